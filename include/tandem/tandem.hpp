// tandem/tandem.hpp -- the umbrella header: includes every public header of tandem.
//
// Including the one header a translation unit needs is cheaper to compile; this one is for
// convenience and for the consumer tests.
#pragma once

#include "version.hpp"

#include "sync/assert.hpp"
#include "sync/backoff.hpp"
#include "sync/cache_padded.hpp"
