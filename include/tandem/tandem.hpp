// tandem/tandem.hpp -- the umbrella header: includes every public header of tandem.
//
// Including the one header a translation unit needs is cheaper to compile; this one is for
// convenience and for the consumer tests.
#pragma once

#include "version.hpp"

// The shared layer.
#include "sync/assert.hpp"
#include "sync/asymmetric_fence.hpp"
#include "sync/atomic_wait.hpp"
#include "sync/backoff.hpp"
#include "sync/cache_padded.hpp"
#include "sync/epoch_reclamation.hpp"
#include "sync/once_cell.hpp"
#include "sync/reader_epochs.hpp"
#include "sync/striped_lock.hpp"

// The components and their shared defaults.
#include "double_buffer.hpp"
#include "double_buffer_map.hpp"
#include "event_bus.hpp"
#include "rc_map.hpp"
#include "registry.hpp"
#include "string_hash.hpp"
