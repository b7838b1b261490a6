// tandem/detail/string_hash.hpp -- the internal name of tandem::string_hash (string_hash.hpp).
#pragma once

#include "../string_hash.hpp"

namespace tandem::detail {
using ::tandem::string_hash;
}  // namespace tandem::detail
