// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: registry_caller_conversion.cpp:[0-9]+:[0-9]+: error: .*conversion
// compile-flags: -Wconversion -Wsign-conversion -Werror
// expect-errors: 11
// A value-changing conversion of a scalar Key is the caller's, reported at the caller's line
// even with tandem included as a system header: every function that takes a key takes a
// scalar Key by value (rule 70). Until 2026-12-05 each call below compiled silently (`Key(key)`
// inside the header): the key 2^64 - 1.
#include <tandem/registry.hpp>

#include <cstdint>
#include <memory>

struct service {
  int value = 0;
};

int main() {
  int i = -1;
  tandem::registry<service, std::uint64_t> registry;
  (void)registry.get_or_create(i);
  (void)registry.get_or_create_with(i, [] { return service{}; });
  (void)registry.find(i);
  (void)registry.visit(i, [](service&) {});
  (void)registry.contains(i);
  (void)registry.erase(i);
  registry.declare(i, [] { return service{}; });
  registry.declare(i, [] { return service{}; }, tandem::eager);
  registry.override(i, std::make_shared<service>());
  (void)registry.restore(i);
  (void)registry.accessor(i);
}
