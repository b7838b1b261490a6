// The NDEBUG half of layout_test: the layouts and a read through objects built by the other
// translation unit, which is compiled with assertions on. Any member that exists only with
// assertions on would make these disagree (and, under ASan, overflow).
#undef TANDEM_ENABLE_ASSERTS
#ifndef NDEBUG
#define NDEBUG 1
#endif
#include "public_types.hpp"

#include <optional>
#include <vector>

namespace tandem::test::layout {

std::vector<fact> facts_without_asserts() {
  std::vector<fact> facts;
#define TANDEM_LAYOUT_FACT(name, ...) \
  facts.push_back({#name, sizeof(__VA_ARGS__), alignof(__VA_ARGS__)});
  TANDEM_LAYOUT_TYPES(TANDEM_LAYOUT_FACT)
#undef TANDEM_LAYOUT_FACT
  return facts;
}

bool asserts_on_in_ndebug_unit() {
  return TANDEM_ENABLE_ASSERTS != 0;
}

// Reads through a reader the other unit made: the guard lives on this unit's stack frame with
// this unit's idea of its size.
std::size_t read_size_without_asserts(dbm::reader& reader, const std::string& key) {
  auto guard = reader.read();
  const std::string* value = guard.find(key);
  return value != nullptr ? value->size() : 0;
}

// Receives on objects the other unit made, through mailbox members that only this unit
// instantiates (try_pop, consume_queued); the other unit instantiates pop, pop_until and the
// inbox's try_pop. At -O0 these calls are not inlined, so a helper type of the mailbox with one
// name but a layout per build would be sized by one unit and built by the other's constructor.
std::string try_receive_without_asserts(bus::subscription& subscription) {
  std::optional<std::string> message = subscription.try_receive();
  return message ? *message : std::string("(empty)");
}

std::string consume_all_without_asserts(bus::inbox_type& inbox) {
  std::string all;
  inbox.consume_all([&all](bus::envelope_type& envelope) { all += envelope.message(); });
  return all;
}

}  // namespace tandem::test::layout
