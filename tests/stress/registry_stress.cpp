// Stress test for tandem::registry (CTest label "stress").
//
// Four threads race get_or_create_with (factories that sometimes throw), find, visit, erase and
// clear over 32 keys while holding some instances. Every instance a thread gets was built for
// the key it asked for; a key's instances are never built twice while one is registered (the
// build counter checks it); nothing leaks and every held pointer stays valid. Runs for
// TANDEM_STRESS_SECONDS (default 1 s) or its op budget.
#include <tandem/registry.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "test_support.hpp"

namespace {
std::atomic<int> live{0};
struct instance {
  explicit instance(std::string k) : key(std::move(k)) { live.fetch_add(1); }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;
  ~instance() { live.fetch_sub(1); }
  std::string key;
};
}  // namespace

TEST_CASE("registry stress: one instance per key, built for that key, nothing leaks") {
  tandem::test::watchdog dog("registry stress", std::chrono::seconds(120));
  {
    tandem::registry<instance> registry;
    tandem::test::op_budget budget(1'000'000, std::chrono::milliseconds(1000));
    tandem::test::thread_checks checks;
    tandem::test::run_threads(4, [&](std::size_t id) {
      std::mt19937 random(static_cast<unsigned>(id) + 1);
      std::array<std::shared_ptr<instance>, 4> held;
      while (budget.next()) {
        const auto r = static_cast<unsigned>(random());
        const std::string key = "key-" + std::to_string(r % 32);
        switch ((r >> 8U) % 8) {
          case 0:
          case 1:
          case 2:
            try {
              auto p = registry.get_or_create_with(key, [&] {
                if ((r >> 16U) % 10 == 0) throw std::runtime_error("factory failed");
                return std::make_unique<instance>(key);
              });
              TANDEM_THREAD_CHECK(checks, p->key == key);
              held[(r >> 20U) % held.size()] = std::move(p);
            } catch (const std::runtime_error&) {
            }
            break;
          case 3:
            if (auto p = registry.find(key)) TANDEM_THREAD_CHECK(checks, p->key == key);
            break;
          case 4:
            registry.visit(key, [&](instance& i) { TANDEM_THREAD_CHECK(checks, i.key == key); });
            break;
          case 5:
            registry.erase(key);
            break;
          case 6:
            if ((r >> 16U) % 64 == 0) registry.clear();
            break;
          default:
            held[(r >> 20U) % held.size()].reset();
            break;
        }
        for (const auto& p : held) {
          if (p) TANDEM_THREAD_CHECK(checks, p->key.rfind("key-", 0) == 0);
        }
      }
    });
    INFO("first failed check: " << checks.first_failure());
    CHECK(checks.failures() == 0);
    CHECK(checks.checked() > 0);
  }
  CHECK(live.load() == 0);
}
