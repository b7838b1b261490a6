// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map_key_without_hash.cpp:[0-9]+:[0-9]+: error: .*(tandem::rc_map|class template 'rc_map')
// expect-concept: rc_map_hash.*is_invocable_r_v
// The deepest note names the missing call (Hash(key)), not a destructor check of the disabled
// std::hash specialisation (found by a new user's trial, 2026-12-05: the invocability test now
// comes first in the hash concept).
// A K with no std::hash specialisation (and no Hash given). The first error is at this
// file's line that names the class (the requires-clause of the class template), not inside
// the header, and the output names the concept that failed.
#include <tandem/rc_map.hpp>

struct no_hash_type {
  int value;
  bool operator==(const no_hash_type&) const = default;
};

int main() {
  tandem::rc_map<no_hash_type, int> map;
  (void)map;
}
