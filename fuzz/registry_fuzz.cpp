// Differential fuzzer for tandem::registry.
//
// The input drives get_or_create / get_or_create_with (with factories that sometimes throw or
// return null), find, visit, contains, erase and clear, while the test keeps some of the
// returned shared_ptrs alive. The model is the list of built keys in creation order with the
// id of the instance each one holds. Checked after every operation: size(), contains(), find()
// identity, for_each order; a throwing or null-returning factory leaves no entry; erase/clear
// never invalidate a held pointer (AddressSanitizer would see the use-after-free); instances
// are destroyed exactly when the registry and every holder have let go.
#include <tandem/registry.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_input.hpp"

namespace {

// A failed check prints what failed and aborts; libFuzzer reports the crash and saves the input.
#define require(condition)                                                                       \
  ((condition) ? static_cast<void>(0)                                                            \
               : (std::fprintf(stderr, "fuzz check failed: %s at %s:%d\n", #condition, __FILE__, \
                               __LINE__),                                                        \
                  std::abort()))

int live_instances = 0;

struct instance {
  explicit instance(int instance_id) : id(instance_id) { ++live_instances; }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;
  ~instance() { --live_instances; }
  int id;
};

struct factory_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  std::vector<std::shared_ptr<instance>> held;
  {
    tandem::registry<instance> registry;
    std::vector<std::pair<std::string, int>> model;  // creation order
    int next_id = 0;
    auto find_model = [&](const std::string& key) {
      for (auto it = model.begin(); it != model.end(); ++it) {
        if (it->first == key) return it;
      }
      return model.end();
    };

    while (!in.empty()) {
      const std::string key = "key-" + std::to_string(in.below(12));
      switch (in.below(8)) {
        case 0:
        case 1: {  // get_or_create_with: factory returns T, unique_ptr, shared_ptr, null, or throws
          const unsigned how = in.below(5);
          const auto existing = find_model(key);
          const int id = next_id++;
          bool called = false;
          try {
            std::shared_ptr<instance> got;
            switch (how) {
              case 0:
                got = registry.get_or_create_with(key, [&] {
                  called = true;
                  return std::make_unique<instance>(id);
                });
                break;
              case 1:
                got = registry.get_or_create_with(key, [&] {
                  called = true;
                  return std::make_shared<instance>(id);
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
                  return std::make_unique<instance>(id);
                });
                break;
            }
            require(got != nullptr);
            if (existing != model.end()) {
              require(!called);
              require(got->id == existing->second);
            } else {
              require(called && (how == 0 || how == 1 || how == 4));
              require(got->id == id);
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
          const std::shared_ptr<instance> got = registry.find(key);
          require((got != nullptr) == (existing != model.end()));
          if (got) require(got->id == existing->second);
          break;
        }
        case 3: {
          const auto existing = find_model(key);
          int seen = -1;
          const bool visited = registry.visit(key, [&](instance& i) { seen = i.id; });
          require(visited == (existing != model.end()));
          if (visited) require(seen == existing->second);
          break;
        }
        case 4: {
          const auto existing = find_model(key);
          require(registry.erase(key) == (existing != model.end()));
          if (existing != model.end()) model.erase(existing);
          break;
        }
        case 5:
          if (in.below(4) == 0) {
            registry.clear();
            model.clear();
          }
          break;
        case 6:
          if (!held.empty())
            held.erase(held.begin() + in.below(static_cast<std::uint8_t>(held.size())));
          break;
        default:
          break;
      }
      require(registry.size() == model.size());
      std::size_t position = 0;
      registry.for_each([&](const std::string& k, instance& i) {
        require(position < model.size());
        require(model[position].first == k && model[position].second == i.id);
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
  for (const auto& h : held) require(h->id >= 0);
  held.clear();
  require(live_instances == 0);
  return 0;
}
