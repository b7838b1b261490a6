// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: tandem::registry|class template 'registry'
// expect-concept: registry_hash.*is_invocable_r_v
// The deepest note names the missing call (Hash(key)), not a destructor check of the disabled
// std::hash specialisation (found by a new user's trial, 2026-12-05: the invocability test now
// comes first in the hash concept).
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
