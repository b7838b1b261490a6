// Differential fuzzer for tandem::registry.
//
// The input's first byte picks the key type: int, or heap-owning std::string keys
// (fuzz_input.hpp: a moved-from one is "" and no model key); instances carry a heap-owning
// std::string payload in the string mode. Then it drives get_or_create_with (with factories
// that sometimes throw or return null), find, visit, contains, erase and clear, while the test
// keeps some of the returned shared_ptrs alive, and "fail the next allocation": the next
// operation runs with its Nth allocation throwing std::bad_alloc
// (tests/support/failing_new.hpp). The model is the list of built keys in creation order with
// the id of the instance each one holds. Checked after every operation: size(), contains(),
// find() identity, for_each order, keys and payloads; a throwing or null-returning factory
// leaves no entry; erase/clear never invalidate a held pointer (AddressSanitizer would see the
// use-after-free); instances are destroyed exactly when the registry and every holder have let
// go. Exception guarantees (docs/reliability.md): get_or_create_with and erase are strong (a
// std::bad_alloc leaves the entries as they were, and a failed creation leaves no instance
// alive); find, visit and contains allocate nothing; clear is basic (the entries it did not
// release stay registered and reachable, in creation order).
#include <tandem/registry.hpp>

#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "failing_new.hpp"
#include "fuzz_input.hpp"

namespace {

using tandem::fuzz::heap_string;
using tandem::test::with_allocation_failure;

int live_instances = 0;

struct instance {
  instance(int instance_id, std::string instance_payload)
      : id(instance_id), payload(std::move(instance_payload)) {
    ++live_instances;
  }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;
  ~instance() { --live_instances; }
  int id;
  std::string payload;
};

struct factory_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct int_keys {
  using key_type = int;
  static key_type key(unsigned id) { return static_cast<int>(id); }
  static std::string payload(int id) { return std::to_string(id); }
};

struct string_keys {
  using key_type = std::string;
  static key_type key(unsigned id) { return heap_string("registry_key", id); }
  static std::string payload(int id) {
    return heap_string("registry_payload", static_cast<unsigned>(id));
  }
};

template <class Types>
void run(tandem::fuzz::input& in) {
  using key_type = typename Types::key_type;
  std::vector<std::shared_ptr<instance>> held;
  std::vector<key_type> keys;
  for (unsigned id = 0; id < 12; ++id) keys.push_back(Types::key(id));
  {
    tandem::registry<instance, key_type> registry;
    std::vector<std::pair<key_type, int>> model;  // creation order
    int next_id = 0;
    std::size_t fail_at = 0;  // armed failure for the next operation
    // Runs one library call with the armed allocation failure (if any); true if it threw
    // std::bad_alloc. The failure is armed for one operation only.
    auto armed = [&](auto&& f) { return with_allocation_failure(std::exchange(fail_at, 0), f); };
    auto find_model = [&](const key_type& key) {
      for (auto it = model.begin(); it != model.end(); ++it) {
        if (it->first == key) return it;
      }
      return model.end();
    };

    while (!in.empty()) {
      const key_type& key = keys[in.below(12)];
      switch (in.below(9)) {
        case 0:
        case 1: {  // get_or_create_with: factory returns T, unique_ptr, shared_ptr, null, or throws
          const unsigned how = in.below(5);
          const auto existing = find_model(key);
          const int id = next_id++;
          const std::string payload = Types::payload(id);
          bool called = false;
          std::shared_ptr<instance> got;
          try {
            const bool threw = armed([&] {
              switch (how) {
                case 0:
                  got = registry.get_or_create_with(key, [&] {
                    called = true;
                    return std::make_unique<instance>(id, payload);
                  });
                  break;
                case 1:
                  got = registry.get_or_create_with(key, [&] {
                    called = true;
                    return std::make_shared<instance>(id, payload);
                  });
                  break;
                case 2:
                  got = registry.get_or_create_with(key, [&]() -> std::unique_ptr<instance> {
                    called = true;
                    return nullptr;
                  });
                  break;
                case 3:
                  got = registry.get_or_create_with(key, [&]() -> std::unique_ptr<instance> {
                    called = true;
                    throw factory_failure("planned");
                  });
                  break;
                default:
                  got = registry.get_or_create_with(key, [&] {
                    called = true;
                    return std::make_unique<instance>(id, payload);
                  });
                  break;
              }
            });
            if (threw) {  // strong: no entry; a hit allocates nothing, so it cannot fail
              require(existing == model.end());
              require(got == nullptr);
              break;
            }
            require(got != nullptr);
            if (existing != model.end()) {
              require(!called);
              require(got->id == existing->second);
            } else {
              require(called && (how == 0 || how == 1 || how == 4));
              require(got->id == id);
              require(got->payload == payload);
              model.emplace_back(key, id);
            }
            if (in.below(2) == 0 && held.size() < 16) held.push_back(std::move(got));
          } catch (const factory_failure&) {
            require(existing == model.end() && called && how == 3);
          } catch (const std::invalid_argument&) {
            require(existing == model.end() && called && how == 2);  // null from the factory
          }
          break;
        }
        case 2: {
          const auto existing = find_model(key);
          std::shared_ptr<instance> got;
          require(!armed([&] { got = registry.find(key); }));  // allocates nothing
          require((got != nullptr) == (existing != model.end()));
          if (got) require(got->id == existing->second);
          break;
        }
        case 3: {
          const auto existing = find_model(key);
          int seen = -1;
          bool visited = false;
          require(
              !armed([&] { visited = registry.visit(key, [&](instance& i) { seen = i.id; }); }));
          require(visited == (existing != model.end()));
          if (visited) require(seen == existing->second);
          break;
        }
        case 4: {
          const auto existing = find_model(key);
          bool erased = false;
          if (armed([&] { erased = registry.erase(key); })) {
            require(registry.contains(key) == (existing != model.end()));  // strong
            break;
          }
          require(erased == (existing != model.end()));
          if (existing != model.end()) model.erase(existing);
          break;
        }
        case 5:
          if (in.below(4) == 0) {
            if (armed([&] { registry.clear(); })) {
              // Basic: what it did not release stays registered, in creation order.
              std::erase_if(model,
                            [&](const auto& entry) { return !registry.contains(entry.first); });
            } else {
              model.clear();
            }
          }
          break;
        case 6:
          if (!held.empty())
            held.erase(held.begin() + in.below(static_cast<std::uint8_t>(held.size())));
          break;
        case 7:  // the next operation runs with its Nth allocation failing
          fail_at = std::size_t{1} + in.below(16);
          break;
        default: {
          const auto existing = find_model(key);
          bool present = false;
          require(!armed([&] { present = registry.contains(key); }));  // allocates nothing
          require(present == (existing != model.end()));
          break;
        }
      }
      require(registry.size() == model.size());
      std::size_t position = 0;
      registry.for_each([&](const key_type& k, instance& i) {
        require(position < model.size());
        require(model[position].first == k && model[position].second == i.id);
        require(i.payload == Types::payload(i.id));
        ++position;
      });
      require(position == model.size());
      for (const auto& [k, id] : model) require(registry.contains(k));
      // Instances alive = those in the registry plus held ones no longer in it.
      int expected_live = static_cast<int>(model.size());
      for (const auto& h : held) {
        bool in_registry = false;
        for (const auto& [k, id] : model) in_registry = in_registry || id == h->id;
        bool counted_before = false;
        for (const auto& other : held) {
          if (&other == &h) break;
          counted_before = counted_before || other.get() == h.get();
        }
        if (!in_registry && !counted_before) ++expected_live;
      }
      require(live_instances == expected_live);
    }
  }
  // The registry is gone; only held pointers keep instances alive, and they are still valid.
  for (const auto& h : held) require(h->id >= 0 && h->payload == Types::payload(h->id));
  held.clear();
  require(live_instances == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  if (in.below(2) == 0) {
    run<int_keys>(in);
  } else {
    run<string_keys>(in);
  }
  return 0;
}
