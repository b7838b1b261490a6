// Tests for registry's folly::Singleton-style features (include/tandem/registry.hpp): declared
// factories, eager entries, test overrides and the cached accessor.
#include <tandem/double_buffer.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <deque>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "thread_state.hpp"

namespace {

struct service {
  explicit service(std::string n) : name(std::move(n)) {}
  std::string name;
};

// Neither constructible from a key nor default-constructible: needs a declared factory.
struct needs_factory {
  explicit needs_factory(int v) : value(v) {}
  int value;
};

// Declared from a static initialiser, before main(), on the process-wide registry.
const bool declared_at_static_init = [] {
  tandem::registry<needs_factory>::global().declare("from-static-init",
                                                    [] { return needs_factory(17); });
  return true;
}();

std::atomic<int> hash_calls{0};
struct counting_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    hash_calls.fetch_add(1);
    return tandem::string_hash{}(s);
  }
};

}  // namespace

TEST_CASE("registry declare: get_or_create uses the declared factory, built on first use") {
  tandem::registry<needs_factory> registry;
  int calls = 0;
  registry.declare("answer-with-a-long-name-on-the-heap", [&] {
    ++calls;
    return std::make_unique<needs_factory>(42);
  });
  CHECK(calls == 0);
  CHECK_FALSE(registry.contains("answer-with-a-long-name-on-the-heap"));
  CHECK(registry.get_or_create("answer-with-a-long-name-on-the-heap")->value == 42);
  CHECK(registry.get_or_create("answer-with-a-long-name-on-the-heap")->value == 42);
  CHECK(calls == 1);
  // After erase the declaration stays: the next get_or_create builds again.
  CHECK(registry.erase("answer-with-a-long-name-on-the-heap"));
  CHECK(registry.get_or_create("answer-with-a-long-name-on-the-heap")->value == 42);
  CHECK(calls == 2);
}

TEST_CASE("registry declare: declaring a key twice is a logic_error, no factory is one too") {
  tandem::registry<needs_factory> registry;
  registry.declare("k", [] { return needs_factory(1); });
  CHECK_THROWS_WITH(registry.declare("k", [] { return needs_factory(2); }),
                    Catch::Matchers::Contains("\"k\" is already declared"));
  CHECK(registry.get_or_create("k")->value == 1);
  CHECK_THROWS_WITH(registry.get_or_create("undeclared"),
                    Catch::Matchers::Contains("no factory for \"undeclared\""));
  CHECK_FALSE(registry.contains("undeclared"));
}

TEST_CASE("registry declare: global() declarations may come from static initialisers") {
  CHECK(declared_at_static_init);
  CHECK(tandem::registry<needs_factory>::global().get_or_create("from-static-init")->value == 17);
}

TEST_CASE("registry eager: create_eager builds every eager entry, in parallel") {
  tandem::test::watchdog dog("create_eager in parallel");
  tandem::registry<service> registry;
  const bool parallel = std::thread::hardware_concurrency() >= 2;
  std::latch both(parallel ? 2 : 1);
  registry.declare(
      "db",
      [&] {
        both.arrive_and_wait();  // returns only once the other eager factory runs too
        return service("db");
      },
      tandem::eager);
  registry.declare(
      "cache",
      [&] {
        if (parallel) both.arrive_and_wait();
        return service("cache");
      },
      tandem::eager);
  int lazy_calls = 0;
  registry.declare("lazy", [&] {
    ++lazy_calls;
    return service("lazy");
  });
  CHECK(registry.create_eager() == 2);
  CHECK(registry.contains("db"));
  CHECK(registry.contains("cache"));
  CHECK_FALSE(registry.contains("lazy"));
  CHECK(lazy_calls == 0);
  CHECK(registry.create_eager() == 2);  // idempotent: nothing is built twice
}

TEST_CASE("registry eager: a failing eager factory fails create_eager, the others are built") {
  tandem::registry<service> registry;
  registry.declare(
      "broken", []() -> service { throw std::runtime_error("no database"); }, tandem::eager);
  registry.declare(
      "fine", [] { return service("fine"); }, tandem::eager);
  CHECK_THROWS_WITH(registry.create_eager(), "no database");
  CHECK(registry.contains("fine"));
  CHECK_FALSE(registry.contains("broken"));
}

TEST_CASE("registry override: replaces what lookups return, restore returns to the factory") {
  tandem::registry<service> registry;
  registry.declare("mailer", [] { return service("real mailer"); });
  const auto real = registry.get_or_create("mailer");
  const auto fake = std::make_shared<service>("fake mailer");
  registry.override("mailer", fake);
  CHECK(registry.get_or_create("mailer") == fake);
  CHECK(registry.find("mailer") == fake);
  CHECK(registry.get_or_create_with("mailer", [] { return service("other"); }) == fake);
  CHECK(real->name == "real mailer");  // a shared_ptr held before keeps the old instance
  CHECK(registry.restore("mailer"));
  CHECK_FALSE(registry.restore("mailer"));
  const auto rebuilt = registry.get_or_create("mailer");
  CHECK(rebuilt != fake);
  CHECK(rebuilt->name == "real mailer");
  CHECK_THROWS_AS(registry.override("mailer", nullptr), std::invalid_argument);
}

TEST_CASE("registry accessor: get() does not hash, it follows erase, override and restore") {
  tandem::registry<service, std::string, counting_hash, tandem::string_equal> registry;
  int builds = 0;
  registry.declare("hot-key-with-a-long-name-on-the-heap", [&] {
    ++builds;
    return service("built " + std::to_string(builds));
  });
  auto hot = registry.accessor("hot-key-with-a-long-name-on-the-heap");
  CHECK(builds == 0);  // nothing happens until the first get()
  CHECK(hot->name == "built 1");
  const int hashes = hash_calls.load();
  for (int i = 0; i < 1000; ++i) CHECK(hot.get().name == "built 1");
  CHECK(hash_calls.load() == hashes);  // no hashing on the cached path
  registry.erase("hot-key-with-a-long-name-on-the-heap");
  CHECK(hot->name == "built 2");  // rebuilt on the next get()
  const auto fake = std::make_shared<service>("fake");
  registry.override("hot-key-with-a-long-name-on-the-heap", fake);
  CHECK(&hot.get() == fake.get());
  registry.restore("hot-key-with-a-long-name-on-the-heap");
  CHECK(hot->name == "built 3");
  auto copy = hot;  // one per thread: copies are independent caches
  CHECK(copy->name == "built 3");
}

namespace {

constexpr const char* overridden_key = "mailer-service-with-a-long-key-on-the-heap";

// Orders two racing calls deterministically through the registry's KeyEqual: the first caller,
// once its override is declared (its instance's use_count shows the registry's copy), stops at
// its next key comparison until the second caller has begun its own call (its first key
// comparison, made while it declares or clears under the declarations' lock). So the second
// declares after the first, while the first is still making its instance the registered one.
struct race_gate {
  std::latch first_declared{1};
  std::latch second_started{1};
};
thread_local race_gate* current_gate = nullptr;
thread_local int gate_role = 0;  // 1: the first caller, 2: the second
thread_local const std::shared_ptr<service>* gate_instance = nullptr;  // the first's instance
thread_local bool gate_passed = false;

struct gated_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    if (current_gate != nullptr && !gate_passed) {
      // use_count 3: the test's copy, override()'s parameter and the declared override.
      if (gate_role == 1 && gate_instance->use_count() >= 3) {
        gate_passed = true;
        current_gate->first_declared.count_down();
        current_gate->second_started.wait();
      } else if (gate_role == 2) {
        gate_passed = true;
        current_gate->second_started.count_down();
      }
    }
    return a == b;
  }
};

}  // namespace

// Each round, two override()s of one key (odd rounds: an override() and a restore()) race, the
// second one declared while the first is still replacing the registered instance. Each call
// must return (the watchdog fails the test otherwise), and once both have returned the second
// one's outcome holds: its instance is registered (override) or no override's instance is
// (restore), and a fresh build gives the same.
TEST_CASE(
    "registry override: racing overrides and restores of one key all return and the last one "
    "wins") {
  tandem::test::watchdog dog("racing override() calls", std::chrono::seconds(30));
  tandem::registry<service, std::string, tandem::string_hash, gated_equal> registry;
  const std::string key = overridden_key;
  registry.declare(key, [] { return service("the real mailer, built by its factory"); });
  constexpr int rounds = 200;
  std::barrier sync(3);  // the two racing threads and this one: meet after each round
  std::deque<race_gate> gates;
  std::deque<std::latch> go;  // one per round: counted down when instances[] are ready
  for (int round = 0; round < rounds; ++round) {
    gates.emplace_back();
    go.emplace_back(1);
  }
  std::shared_ptr<service> instances[2];
  bool restore_results[rounds] = {};
  auto racer = [&](int me) {
    for (int round = 0; round < rounds; ++round) {
      const auto index = static_cast<std::size_t>(round);
      go[index].wait();
      if (me == 1) gates[index].first_declared.wait();  // declare second
      current_gate = &gates[index];
      gate_role = me + 1;
      gate_instance = &instances[me];
      gate_passed = false;
      if (round % 2 == 0 || me == 0) {
        registry.override(key, instances[me]);
      } else {
        restore_results[round] = registry.restore(key);
      }
      current_gate = nullptr;
      sync.arrive_and_wait();  // both calls have returned
    }
  };
  std::thread first(racer, 0);
  std::thread second(racer, 1);
  int bad_rounds = 0;
  int first_bad_round = -1;
  for (int round = 0; round < rounds; ++round) {
    const bool with_restore = round % 2 == 1;
    const auto base =
        std::make_shared<service>("the override declared before round " + std::to_string(round));
    if (with_restore) {
      registry.override(key, base);
    } else {
      (void)registry.get_or_create(key);  // a registered instance for the first to replace
    }
    for (int i = 0; i < 2; ++i) {
      instances[i] = std::make_shared<service>("the override of thread " + std::to_string(i) +
                                               " in round " + std::to_string(round));
    }
    go[static_cast<std::size_t>(round)].count_down();
    sync.arrive_and_wait();
    const auto registered = registry.find(key);
    registry.erase(key);
    const auto rebuilt = registry.get_or_create(key);  // what a build gives now
    bool ok = false;
    if (!with_restore) {
      ok = registered == instances[1] && rebuilt == instances[1];
    } else {
      ok = restore_results[round] && registered != instances[0] && registered != base &&
           rebuilt->name == "the real mailer, built by its factory";
    }
    if (!ok) {
      ++bad_rounds;
      if (first_bad_round < 0) first_bad_round = round;
    }
    registry.restore(key);
    registry.erase(key);
  }
  first.join();
  second.join();
  INFO("wrong outcome in " << bad_rounds << " of " << rounds << " rounds, first in round "
                           << first_bad_round);
  CHECK(bad_rounds == 0);
}

// Rule 31's "a second restore() returns with no override registered" is in
// tests/interleaving/registry_interleaving_test.cpp: it holds the first restore() at a test
// point between its clear and its drop (since 2026-12-03 every step there holds a lock, so the
// KeyEqual that used to park it there could not).

namespace {
// An instance whose destructor uses its registry (registry.hpp: T's destructor may call it).
struct reentrant_service {
  explicit reentrant_service(std::string n) : name(std::move(n)) {}
  ~reentrant_service();
  std::string name;
};
tandem::registry<reentrant_service>* reentrant_registry = nullptr;
reentrant_service::~reentrant_service() {
  if (reentrant_registry != nullptr && name == "the first fake") {
    // Builds: takes the declarations' mutex, which override() held here before the fix.
    (void)reentrant_registry->get_or_create("another-service-with-a-long-name");
  }
}
}  // namespace

// Rule 14: override() releases the override it replaces after its locks. Before: that
// instance's destructor ran under the declarations' mutex, and a lookup from it that builds
// deadlocked (the watchdog fails the test).
TEST_CASE("registry override: the replaced override's destructor may use the registry") {
  tandem::test::watchdog dog("override() releasing under its lock", std::chrono::seconds(30));
  tandem::registry<reentrant_service> registry;
  reentrant_registry = &registry;
  const std::string key = overridden_key;
  registry.declare("another-service-with-a-long-name",
                   [] { return reentrant_service("built from a destructor"); });
  std::weak_ptr<reentrant_service> first_fake;
  {
    auto fake = std::make_shared<reentrant_service>("the first fake");
    first_fake = fake;
    registry.override(key, fake);
  }
  CHECK(registry.erase(key));           // now only the declaration holds it
  (void)registry.erase("no-such-key");  // a writer call: the erased entry is freed
  REQUIRE(first_fake.use_count() == 1);
  registry.override(key, std::make_shared<reentrant_service>("the second fake"));
  CHECK(first_fake.expired());
  CHECK(registry.contains("another-service-with-a-long-name"));
  CHECK(registry.find(key)->name == "the second fake");
  registry.restore(key);
  reentrant_registry = nullptr;
}

// create_eager() called from inside a factory (the factory of "app" starts the eager ones),
// where eager factories need "app": on helper threads that was a helper waiting for "app"'s
// build while "app"'s builder waited in join() for the helper, a wait the cycle detector cannot
// see (a silent hang until 2026-12-01). Now the caller builds every key itself, and the cycle
// is a recursive_creation_error, reported by create_eager() to the factory.
TEST_CASE("registry eager: create_eager inside a factory reports a cycle instead of hanging") {
  tandem::test::watchdog dog("create_eager inside a factory");
  tandem::registry<service> registry;
  registry.declare(
      "db", [&] { return service(registry.get_or_create("app")->name + "/db"); }, tandem::eager);
  registry.declare(
      "cache", [&] { return service(registry.get_or_create("app")->name + "/cache"); },
      tandem::eager);
  std::string reported;
  registry.declare("app", [&] {
    try {
      registry.create_eager();
    } catch (const tandem::recursive_creation_error& e) {
      reported = e.what();
    }
    return service("app");
  });
  CHECK(registry.get_or_create("app")->name == "app");
  INFO(reported);
  CHECK_FALSE(reported.empty());
  CHECK(registry.create_eager() == 2);  // outside any build: both are built now
  CHECK(registry.get_or_create("db")->name == "app/db");
}

namespace {
// A double_buffer op for the tests below: appends a heap-owning string.
struct append {
  std::string text;
  void operator()(std::vector<std::string>& v) const { v.push_back(text); }
};
// Whether create_eager() runs factories on helper threads here (it starts none on one core).
bool create_eager_starts_helpers() {
  if (std::thread::hardware_concurrency() >= 2) return true;
  WARN("one hardware thread: create_eager starts no helper, nothing to test");
  return false;
}
}  // namespace

// Found by a review (2026-12-01, night): the caller holds a double_buffer read guard, or owns a
// full `block` mailbox, and calls create_eager(); a factory on a helper thread then publishes
// to that buffer or mailbox. On the caller's own thread the publish throws std::logic_error
// (it would wait for itself); on a helper it waited for the caller, who waited in join() for
// the helper: a silent hang. Helpers now work for the caller (detail::is_self), so the publish
// throws there too, and create_eager() reports it.
TEST_CASE(
    "registry eager: a factory on a helper that would wait for the caller's read guard or full "
    "mailbox throws logic_error, as on the caller's thread, instead of hanging") {
  tandem::test::watchdog dog("create_eager helper waiting for its caller",
                             std::chrono::seconds(30));
  if (!create_eager_starts_helpers()) return;
  for (const bool through_mailbox : {false, true}) {
    INFO((through_mailbox ? "a full block mailbox" : "a double_buffer read guard"));
    tandem::registry<service> registry;
    // One buffer and one mailbox per factory (a writer has one user at a time). The latch
    // makes both factories run at once, so one of them runs on the helper.
    std::latch both_running(2);
    auto [writer_a, reader_a] = tandem::make_double_buffer<std::vector<std::string>, append>();
    auto [writer_b, reader_b] = tandem::make_double_buffer<std::vector<std::string>, append>();
    tandem::event_bus<std::string> bus;
    auto sub_a = bus.subscribe("a", 1, tandem::overflow_policy::block);
    auto sub_b = bus.subscribe("b", 1, tandem::overflow_policy::block);
    // A receive makes the caller each mailbox's known receiver (subscribing does not: rule 72).
    CHECK_FALSE(sub_a.try_receive().has_value());
    CHECK_FALSE(sub_b.try_receive().has_value());
    CHECK(bus.publish("a", std::string(40, 'x')) == 1);  // both mailboxes full now
    CHECK(bus.publish("b", std::string(40, 'x')) == 1);
    CHECK(sub_a.pending() == 1);
    // The caller's read guards, each taken before a publish, so the next publish waits for it.
    const auto guard_a = reader_a.read();
    const auto guard_b = reader_b.read();
    writer_a.push(append{"first"});
    writer_a.publish();
    writer_b.push(append{"first"});
    writer_b.publish();
    std::atomic<int> self_waits{0};
    auto factory = [&](auto& writer, const char* topic) {
      return [&, topic] {
        both_running.arrive_and_wait();
        try {
          if (through_mailbox) {
            static_cast<void>(bus.publish(topic, std::string(40, 'y')));
          } else {
            writer.push(append{"second"});
            writer.publish();
          }
        } catch (const std::logic_error&) {
          ++self_waits;
          throw;
        }
        return service(topic);
      };
    };
    registry.declare("a", factory(writer_a, "a"), tandem::eager);
    registry.declare("b", factory(writer_b, "b"), tandem::eager);
    CHECK_THROWS_AS(registry.create_eager(), std::logic_error);
    CHECK(self_waits == 2);  // both factories, each on a helper
    CHECK(sub_a.pending() == 1);
    CHECK(sub_b.pending() == 1);
  }
}

// Found by the review of that fix: the caller also built keys itself, so a read guard ITS
// factory held for a while (a wait that ends) made a helper's publish throw. With helpers the
// caller now only joins; a helper's wait for another helper's guard is an ordinary wait.
TEST_CASE(
    "registry eager: a factory waiting for a guard another factory holds for a while waits and "
    "succeeds (no false self-wait error)") {
  tandem::test::watchdog dog("create_eager helpers waiting for each other",
                             std::chrono::seconds(30));
  if (!create_eager_starts_helpers()) return;
  tandem::registry<service> registry;
  auto made = tandem::make_double_buffer<std::vector<std::string>, append>();
  auto& writer = made.first;  // not a structured binding: clang 14 cannot capture one
  auto& reader = made.second;
  writer.push(append{"first"});
  writer.publish();
  std::latch guard_taken(1);
  std::atomic<long> publisher_tid{0};
  registry.declare(
      "holder",
      [&, mine = reader]() mutable {
        {
          const auto guard = mine.read();  // pins the published copy
          guard_taken.count_down();
          // Released once the publisher sleeps waiting for it (a wait that ends).
          while (publisher_tid.load() == 0 ||
                 !tandem::test::thread_is_asleep(publisher_tid.load())) {
            std::this_thread::yield();
          }
        }
        return service("holder");
      },
      tandem::eager);
  registry.declare(
      "publisher",
      [&] {
        guard_taken.wait();
        publisher_tid = tandem::test::current_thread_id();
        writer.push(append{"second"});
        writer.publish();  // the guard is on the other copy: no wait
        writer.push(append{"third"});
        writer.publish();  // waits for the holder's guard, which ends
        return service("publisher");
      },
      tandem::eager);
  CHECK(registry.create_eager() == 2);
  CHECK(reader.read()->size() == 3);
}

// Found by the same review: inside an rc_map visit (a shard lock held) a helper would block on
// that lock while the caller joined it. create_eager() then builds every key itself, and a
// factory using the visited map gets rc_map's "called from inside visit()" error.
TEST_CASE(
    "registry eager: create_eager inside an rc_map visit builds on the calling thread, and a "
    "factory using that map gets logic_error instead of hanging") {
  tandem::test::watchdog dog("create_eager inside an rc_map visit", std::chrono::seconds(30));
  tandem::rc_map<std::string, std::string> pool(1);
  auto held = pool.get_or_insert_with("db", [] { return std::string("connection"); });
  tandem::registry<service> registry;
  for (const char* key : {"a", "b", "c"}) {
    registry.declare(
        key, [&, key] { return service(std::string(key) + *pool.get("db").value()); },
        tandem::eager);
  }
  bool threw = false;
  CHECK(pool.visit("db", [&](const std::string&) {
    try {
      registry.create_eager();
    } catch (const std::logic_error&) {
      threw = true;
    }
  }));
  CHECK(threw);
  CHECK(registry.create_eager() == 3);  // outside the visit: helpers, and every key built
  CHECK(registry.get_or_create("a")->name == "aconnection");
}

namespace {

// A declared factory whose copy constructor uses the registry: the lookup's miss path takes the
// declarations' mutex, under which get_or_create copied the declared factory until 2026-12-02
// (a self-deadlock).
tandem::registry<service>* copying_registry = nullptr;
constexpr const char* looked_up_by_a_copy = "looked up by a copy constructor, on the heap";
struct registry_using_factory {
  registry_using_factory() = default;
  registry_using_factory(const registry_using_factory& other) : copies(other.copies + 1) {
    if (copying_registry != nullptr) (void)copying_registry->get_or_create(looked_up_by_a_copy);
  }
  registry_using_factory(registry_using_factory&&) noexcept = default;
  registry_using_factory& operator=(const registry_using_factory&) = delete;
  registry_using_factory& operator=(registry_using_factory&&) = delete;
  ~registry_using_factory() = default;
  service operator()() const { return service("copy " + std::to_string(copies)); }
  int copies = 0;
};

}  // namespace

TEST_CASE("registry declare: a declared factory's copy constructor may use the registry") {
  tandem::test::watchdog dog("declared factory copied under the declarations' mutex",
                             std::chrono::seconds(30));
  tandem::registry<service> registry;
  const std::string key = "built by a factory whose copy constructor looks up";
  registry.declare(key, registry_using_factory{});
  copying_registry = &registry;
  // Each build runs a fresh copy of the declared factory (one copy per build).
  CHECK(registry.get_or_create(key)->name == "copy 1");
  CHECK(registry.contains(looked_up_by_a_copy));
  CHECK(registry.erase(key));
  CHECK(registry.get_or_create(key)->name == "copy 1");
  copying_registry = nullptr;
}
