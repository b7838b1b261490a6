// The interface between tests/shared_library_test.cpp (the program) and the shared library it
// loads (module.cpp, built with -fvisibility=hidden and -fvisibility-inlines-hidden, the usual
// settings for a plugin). Both sides use tandem from its headers; the library's functions are
// reached through a table of function pointers, so one source serves a library linked at build
// time and one loaded with dlopen().
#pragma once

#include <tandem/double_buffer.hpp>
#include <tandem/registry.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace tandem_test_module {

// Heap-owning data (a moved-from std::string is "", unlike an int): each op appends its text.
struct append {
  std::string text;
  void operator()(std::string& value) const { value += text; }
};
using buffer = tandem::double_buffer<std::string, append>;

// A type both modules name: registry<shared_value>::global() is one per process only if the
// type is visible to the dynamic linker (docs/building.md, "Shared libraries and plugins").
struct __attribute__((visibility("default"))) shared_value {
  shared_value() = default;
  explicit shared_value(std::string name) : text(std::move(name)) {}  // the registry builds T(key)
  std::string text = std::string(40, 'v');                            // heap-owning
};
using value_registry = tandem::registry<shared_value>;

// A type with no visibility of its own: hidden in the library, as a plugin's types are, so
// registry<plain_value> is a hidden instantiation there. One registry object used from both
// modules must still work (the tables' tombstone is one per process, not per instantiation).
struct plain_value {
  plain_value() = default;
  explicit plain_value(std::string name) : text(std::move(name)) {}  // the registry builds T(key)
  std::string text = std::string(40, 'p');
};
using plain_registry = tandem::registry<plain_value>;

// Addresses of tandem's process-wide state as the module sees it (its own copy if it had one).
struct state_addresses {
  const void* thread_serial_counter;
  const void* this_thread_serial;  // the calling thread's
  const void* epoch_domain;
  const void* this_thread_epoch_slot;
  const void* once_thread_node;
  const void* assertion_handler;
  const void* registry_generation;
  const void* global_registry;
};

struct api {
  state_addresses (*addresses)();
  // Opens a read guard on `r` in the module's code; the caller deletes it with close_guard.
  buffer::read_guard* (*open_guard)(buffer::reader& r);
  void (*close_guard)(buffer::read_guard* guard);
  // r.read() in the module: 0 if it returned a guard, 1 std::logic_error, 2 anything else.
  int (*read_outcome)(buffer::reader& r);
  // registry.get_or_create(key) in the module.
  std::shared_ptr<shared_value> (*get_or_create)(value_registry& registry, const std::string& key);
  // tandem::named_singleton<shared_value>(name) in the module.
  std::shared_ptr<shared_value> (*named_singleton)(const std::string& name);
  // In the module: builds `count` entries ("key 0", "key 1", ...) and erases them (the erases
  // leave tombstones in the tables). Returns how many were erased.
  std::size_t (*build_and_erase)(plain_registry& registry, std::size_t count);
};

}  // namespace tandem_test_module

// The module's exported symbols: the table, and (plain C, for a host that includes no tandem
// header: plugin_host.cpp) the addresses of state_addresses' members in their order; returns
// how many it wrote (at most `capacity`).
extern "C" __attribute__((visibility("default"))) const tandem_test_module::api*
tandem_test_module_api();
extern "C" __attribute__((visibility("default"))) int tandem_test_module_state(const void** out,
                                                                               int capacity);
