// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: tandem::registry|class template 'registry'
// expect-concept: registry_hash
// A Key with no std::hash specialisation (and no Hash given).
#include <tandem/registry.hpp>

struct no_hash_type {
  int value;
  bool operator==(const no_hash_type&) const = default;
};

int main() {
  tandem::registry<int, no_hash_type> registry;
  (void)registry;
}
