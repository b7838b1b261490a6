// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: tandem::registry|class template 'registry'
// expect-concept: registry_hash
// A function pointer as Hash: the registry builds its Hash with Hash() and takes none from the
// caller, so the pointer would be null (until 2026-12-01 this compiled and crashed on first use).
#include <tandem/registry.hpp>

#include <cstddef>
#include <string>

std::size_t length_hash(const std::string& s) { return s.size(); }

int main() {
  tandem::registry<int, std::string, std::size_t (*)(const std::string&)> registry;
  (void)registry;
}
