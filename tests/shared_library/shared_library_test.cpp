// tandem used from a program and from a shared library at once (docs/building.md, "Shared
// libraries and plugins"; docs/reliability.md rule 47). The library (shared_library/module.cpp)
// is built with -fvisibility=hidden -fvisibility-inlines-hidden, the usual plugin settings, and
// is reached twice: linked at build time, and loaded with dlopen() (this program is linked with
// ENABLE_EXPORTS, -rdynamic, as the docs ask of a program that loads plugins). Before tandem
// marked its process-wide state TANDEM_PROCESS_WIDE (found by review, 2026-12-02), each module
// had its own thread serials, epoch slots and once-cell nodes: a publish waiting for a guard that
// another thread opened in the library failed with a false self-wait std::logic_error, a real
// self-wait hung, and a moved-from reader read in the other module gave a guard over nullptr.
#include <tandem/double_buffer.hpp>
#include <tandem/registry.hpp>

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "module.hpp"
#include "test_support.hpp"
#include "thread_state.hpp"

using namespace std::chrono_literals;
using tandem::test::current_thread_id;
using tandem::test::thread_is_asleep;
namespace mod = tandem_test_module;

namespace {

// The library linked at build time, or the copy loaded with dlopen (TANDEM_TEST_MODULE_PATH,
// set by CMake to the MODULE library's file).
const mod::api& module(bool loaded) {
  if (!loaded) return *tandem_test_module_api();
  static const mod::api* table = [] {
    void* handle = ::dlopen(TANDEM_TEST_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
    using entry = const mod::api* (*)();
    auto* get = reinterpret_cast<entry>(::dlsym(handle, "tandem_test_module_api"));
    if (get == nullptr) throw std::runtime_error(std::string("dlsym: ") + ::dlerror());
    return get();
  }();
  return *table;
}

const char* module_name(bool loaded) {
  return loaded ? "loaded with dlopen" : "linked";
}

// The buffers' first value: longer than any small-string buffer.
std::string base_text() {
  return std::string(40, 'b');
}

}  // namespace

TEST_CASE("a hidden-visibility library sees the program's tandem state, not a copy of its own") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    const mod::state_addresses there = module(loaded).addresses();
    CHECK(there.thread_serial_counter == &tandem::detail::last_thread_serial);
    CHECK(there.this_thread_serial == &tandem::detail::this_thread_serial);
    CHECK(there.epoch_domain == &tandem::detail::process_epochs);
    CHECK(there.this_thread_epoch_slot == &tandem::detail::this_thread_epoch_slot);
    CHECK(there.once_thread_node == &tandem::detail::this_thread_once_node);
    CHECK(there.assertion_handler == &tandem::detail::current_assertion_handler);
    CHECK(there.registry_generation == &tandem::detail::registry_generation);
    CHECK(there.global_registry == &mod::value_registry::global());
  }
}

TEST_CASE("publish waits for a guard another thread opened in the library: no false self-wait") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    tandem::test::watchdog guard("guard opened in the library", 60s);
    const mod::api& lib = module(loaded);
    auto [writer, reader] = mod::buffer::create(base_text());
    { const auto warm = reader.read(); }  // this thread takes a serial in the program's code
    std::latch opened(1);
    std::latch publishing(1);
    std::atomic<bool> publish_returned{false};
    std::atomic<long> publisher_tid{0};
    std::thread holder([&, r = reader]() mutable {
      mod::buffer::read_guard* g = lib.open_guard(r);  // this thread's serial, taken in the library
      opened.count_down();
      // Hold the guard until the publisher sleeps in the publish that waits for it (the latch
      // first: asleep before it could mean asleep in opened.wait()), or until that publish
      // returned without waiting (it threw: checked below).
      publishing.wait();
      while (!publish_returned.load() && !thread_is_asleep(publisher_tid.load())) {
        std::this_thread::yield();
      }
      lib.close_guard(g);
    });
    publisher_tid = current_thread_id();
    opened.wait();
    writer.push(mod::append{"1"});
    writer.publish();  // the guard is on the other copy: no wait
    writer.push(mod::append{"2"});
    publishing.count_down();
    bool threw = false;
    try {
      writer.publish();  // waits for the holder's guard: must not be taken for this thread's own
    } catch (const std::logic_error&) {
      threw = true;
    }
    publish_returned = true;
    holder.join();
    CHECK_FALSE(threw);
    CHECK(*reader.read() == base_text() + "12");
  }
}

TEST_CASE(
    "publish while this thread holds a guard opened in the library throws instead of hanging") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    tandem::test::watchdog guard("own guard opened in the library", 60s);
    const mod::api& lib = module(loaded);
    auto [writer, reader] = mod::buffer::create(base_text());
    // Serials taken in the program's code by another thread and by this one, so that the two
    // numberings a per-module counter would give differ.
    std::thread([r = reader]() mutable { const auto g = r.read(); }).join();
    { const auto warm = reader.read(); }
    mod::buffer::read_guard* g = lib.open_guard(reader);
    writer.push(mod::append{"1"});
    writer.publish();
    writer.push(mod::append{"2"});
    CHECK_THROWS_AS(writer.publish(), std::logic_error);
    lib.close_guard(g);
    writer.publish();
    CHECK(*reader.read() == base_text() + "12");
  }
}

TEST_CASE("a reader moved from in the program is refused by the library's read()") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    const mod::api& lib = module(loaded);
    auto [writer, reader] = mod::buffer::create(base_text());
    mod::buffer::reader moved = std::move(reader);
    CHECK(lib.read_outcome(reader) == 1);  // NOLINT(bugprone-use-after-move): the point
    CHECK(lib.read_outcome(moved) == 0);
    CHECK(*moved.read() == base_text());
  }
}

TEST_CASE("a factory that asks the library for its own entry gets recursive_creation_error") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    tandem::test::watchdog guard("recursive creation through the library", 60s);
    const mod::api& lib = module(loaded);
    mod::value_registry registry;
    const std::string key(40, 'k');
    CHECK_THROWS_AS(
        registry.get_or_create_with(key,
                                    [&] {
                                      static_cast<void>(lib.get_or_create(registry, key));
                                      return mod::shared_value{};
                                    }),
        tandem::recursive_creation_error);
    CHECK(lib.get_or_create(registry, key) == registry.get_or_create(key));  // usable afterwards
  }
}

TEST_CASE("named_singleton gives the program and the library one instance") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    const mod::api& lib = module(loaded);
    const std::string name = std::string("shared singleton, library ") + module_name(loaded);
    const auto from_library = lib.named_singleton(name);
    CHECK(from_library == tandem::named_singleton<mod::shared_value>(name));
    CHECK(from_library->text == name);  // built once, as T(name)
  }
}

TEST_CASE("a registry of a type hidden in the library works from both modules") {
  for (const bool loaded : {false, true}) {
    INFO("library " << module_name(loaded));
    const mod::api& lib = module(loaded);
    constexpr std::size_t count = 24;
    {
      mod::plain_registry registry;
      for (int round = 0; round < 3; ++round) {
        CHECK(lib.build_and_erase(registry, count) == count);  // tombstones left by the library
        for (std::size_t i = 0; i < count; ++i) {
          const std::string key = "key " + std::to_string(i);
          CHECK(registry.find(key) == nullptr);  // the program's lookups skip them
          CHECK(registry.get_or_create(key)->text == key);
        }
        CHECK(registry.size() == count);
        for (std::size_t i = 0; i < count; ++i) CHECK(registry.erase("key " + std::to_string(i)));
      }
    }  // ~registry walks tables holding both modules' tombstones
  }
}
