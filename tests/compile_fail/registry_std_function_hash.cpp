// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: tandem::registry|class template 'registry'
// expect-concept: registry_hash
// A std::function as Hash: the registry builds it with Hash(), which is empty (until
// 2026-12-01 this compiled and every lookup threw std::bad_function_call).
#include <tandem/registry.hpp>

#include <cstddef>
#include <functional>
#include <string>

int main() {
  tandem::registry<int, std::string, std::function<std::size_t(const std::string&)>> registry;
  (void)registry;
}
