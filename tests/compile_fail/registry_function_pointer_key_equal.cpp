// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: tandem::registry|class template 'registry'
// expect-concept: registry_key_equal
// A function pointer as KeyEqual: built null by KeyEqual(), as a function-pointer Hash would be
// (until 2026-12-01 this compiled and crashed on the first comparison).
#include <tandem/registry.hpp>

#include <functional>
#include <string>

bool same(const std::string& a, const std::string& b) { return a == b; }

int main() {
  tandem::registry<int, std::string, std::hash<std::string>,
                   bool (*)(const std::string&, const std::string&)>
      registry;
  (void)registry;
}
