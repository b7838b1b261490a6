// The shared library of tests/shared_library_test.cpp: see module.hpp. Built with
// -fvisibility=hidden -fvisibility-inlines-hidden, so that every inline function and variable of
// tandem is the module's own unless tandem marks it process-wide (TANDEM_PROCESS_WIDE).
#include "module.hpp"

#include <stdexcept>
#include <string>

namespace tandem_test_module {
namespace {

state_addresses addresses() {
  return {&tandem::detail::last_thread_serial,    &tandem::detail::this_thread_serial,
          &tandem::detail::process_epochs,        &tandem::detail::this_thread_epoch_slot,
          &tandem::detail::this_thread_once_node, &tandem::detail::current_assertion_handler,
          &tandem::detail::registry_generation,   &value_registry::global()};
}

buffer::read_guard* open_guard(buffer::reader& r) {
  return new buffer::read_guard(r.read());
}

void close_guard(buffer::read_guard* guard) {
  delete guard;
}

int read_outcome(buffer::reader& r) {
  try {
    const auto guard = r.read();
    return 0;
  } catch (const std::logic_error&) {
    return 1;
  } catch (...) {
    return 2;
  }
}

std::shared_ptr<shared_value> get_or_create(value_registry& registry, const std::string& key) {
  return registry.get_or_create(key);
}

std::shared_ptr<shared_value> named_singleton(const std::string& name) {
  return tandem::named_singleton<shared_value>(name);
}

std::size_t build_and_erase(plain_registry& registry, std::size_t count) {
  std::size_t erased = 0;
  for (std::size_t i = 0; i < count; ++i) {
    static_cast<void>(registry.get_or_create("key " + std::to_string(i)));
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (registry.erase("key " + std::to_string(i))) ++erased;
  }
  return erased;
}

constexpr api table{&addresses,     &open_guard,      &close_guard,    &read_outcome,
                    &get_or_create, &named_singleton, &build_and_erase};

}  // namespace
}  // namespace tandem_test_module

const tandem_test_module::api* tandem_test_module_api() {
  return &tandem_test_module::table;
}

int tandem_test_module_state(const void** out, int capacity) {
  const tandem_test_module::state_addresses a = tandem_test_module::addresses();
  const void* const all[] = {a.thread_serial_counter,  a.this_thread_serial, a.epoch_domain,
                             a.this_thread_epoch_slot, a.once_thread_node,   a.assertion_handler,
                             a.registry_generation,    a.global_registry};
  int written = 0;
  for (const void* p : all) {
    if (written == capacity) break;
    out[written++] = p;
  }
  return written;
}
