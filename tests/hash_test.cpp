// tandem::string_hash and the is_avalanching marker (tandem::hash_is_avalanching_v): what the
// marker means, that string_hash deserves it, and that the components stay correct whatever a
// Hash claims (a wrong claim costs speed, never a wrong answer).
#include <tandem/double_buffer_map.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>
#include <tandem/string_hash.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "test_support.hpp"

namespace {

struct marked_true {
  using is_avalanching = std::true_type;
  std::size_t operator()(int) const noexcept { return 0; }
};
struct marked_false {
  using is_avalanching = std::false_type;
  std::size_t operator()(int) const noexcept { return 0; }
};
struct marked_void {  // Boost.Unordered 1.81-1.85 read the marker's presence alone
  using is_avalanching = void;
  std::size_t operator()(int) const noexcept { return 0; }
};
struct unmarked {
  std::size_t operator()(int) const noexcept { return 0; }
};
struct narrow_marked {  // claims to avalanche, but over 32 bits only
  using is_avalanching = std::true_type;
  std::uint32_t operator()(const std::string& s) const noexcept {
    return static_cast<std::uint32_t>(tandem::string_hash{}(s));
  }
};

// A Hash that claims to avalanche and does not: every key hashes to `value`, so every key
// lands in one shard, one bucket and one absent-topic filter slot. Transparent, like the
// string defaults, so lookups by std::string_view take the same paths as with string_hash.
struct constant_claiming_hash {
  using is_transparent = void;
  using is_avalanching = std::true_type;
  std::size_t operator()(std::string_view) const noexcept { return 0x40; }
};

std::string name_of(std::size_t i) {
  // Past the small-string buffer: the keys own heap memory.
  return "a topic name long enough to live on the heap/" + std::to_string(i);
}

}  // namespace

TEST_CASE("hash_is_avalanching_v reads the is_avalanching marker's value, or its presence") {
  STATIC_REQUIRE(tandem::hash_is_avalanching_v<marked_true>);
  STATIC_REQUIRE_FALSE(tandem::hash_is_avalanching_v<marked_false>);
  STATIC_REQUIRE(tandem::hash_is_avalanching_v<marked_void>);
  STATIC_REQUIRE_FALSE(tandem::hash_is_avalanching_v<unmarked>);
  STATIC_REQUIRE_FALSE(tandem::hash_is_avalanching_v<std::hash<int>>);
  STATIC_REQUIRE_FALSE(tandem::hash_is_avalanching_v<std::hash<std::string>>);
  STATIC_REQUIRE(tandem::hash_is_avalanching_v<tandem::string_hash>);
  // What the components do with it: an unmarked hash is remixed (std::hash of an integer is
  // the identity: 16 and 32 would share their low bits), a marked one is used as it is.
  STATIC_REQUIRE(tandem::detail::spread_hash<std::hash<int>, int>(16) ==
                 tandem::sync::mix_hash(16));
  STATIC_REQUIRE(tandem::detail::spread_hash<std::hash<int>, int>(16) != 16);
  STATIC_REQUIRE(tandem::detail::spread_hash<tandem::string_hash, std::string>(16) == 16);
  // The marker claims every bit of a std::size_t: a narrower result is remixed whatever it
  // declares (its top bits are 0, and buckets are taken from the top).
  STATIC_REQUIRE(tandem::hash_is_avalanching_v<narrow_marked>);
  STATIC_REQUIRE_FALSE(tandem::detail::hash_used_as_is_v<narrow_marked, std::string>);
  STATIC_REQUIRE(tandem::detail::hash_used_as_is_v<tandem::string_hash, std::string>);
  STATIC_REQUIRE(tandem::detail::spread_hash<narrow_marked, std::string>(16) != 16);
}

// The claim string_hash makes by declaring the marker. Flipping any one input bit must flip
// each of the 64 output bits with probability 1/2: over n flips the observed frequency has a
// standard deviation of 0.5 / sqrt(n), at most 0.0063 here (n >= 6,400), so 0.03 is about 5
// of them. Random strings from a fixed seed: the outcome is the same on every run. Length 1 is
// left out: 256 strings cannot measure a frequency to 0.03.
TEST_CASE("string_hash avalanches: one flipped input bit flips each output bit half the time") {
  const tandem::string_hash hash;
  std::mt19937_64 random(20261201);
  for (const std::size_t length :
       {2U, 3U, 4U, 5U, 7U, 8U, 9U, 12U, 16U, 17U, 24U, 31U, 32U, 33U, 48U, 64U, 100U}) {
    std::array<std::uint64_t, 64> flipped{};
    std::uint64_t flips = 0;
    for (int sample = 0; sample < 400; ++sample) {
      std::string text(length, '\0');
      for (char& c : text) c = static_cast<char>(random() & 0xFFU);
      const std::uint64_t base = hash(text);
      for (std::size_t bit = 0; bit < 8 * length; ++bit) {
        std::string changed = text;
        changed[bit / 8] = static_cast<char>(changed[bit / 8] ^ (1 << (bit % 8)));
        const std::uint64_t difference = base ^ hash(changed);
        for (std::size_t out = 0; out < 64; ++out) flipped[out] += (difference >> out) & 1U;
        ++flips;
      }
    }
    double worst = 0;
    for (const std::uint64_t count : flipped) {
      worst =
          std::max(worst, std::fabs(static_cast<double>(count) / static_cast<double>(flips) - 0.5));
    }
    INFO("length " << length << ", " << flips << " flips: worst output bit is off 1/2 by "
                   << worst);
    CHECK(worst < 0.03);
  }
}

// What the components rely on: rc_map and the bus pick a shard from the low bits and a bucket
// from the high bits, the registry a shard from the top 4 bits. Names that differ only in a
// few trailing digits (the common case) must fill 64 low-bit and 64 high-bit buckets evenly:
// Pearson's chi-square with 63 degrees of freedom exceeds 104 with probability 0.1%.
TEST_CASE("string_hash spreads names that differ in a few characters over low and high bits") {
  const tandem::string_hash hash;
  for (const char* format : {"room/live-%04zu", "tenant-%zu", "%zu", "/api/v1/users/%zu/orders"}) {
    std::array<int, 64> low{};
    std::array<int, 64> high{};
    constexpr std::size_t names = 4096;
    for (std::size_t i = 0; i < names; ++i) {
      char text[64];
      std::snprintf(text, sizeof text, format, i);
      const std::uint64_t h = hash(std::string_view(text));
      ++low[h & 63U];
      ++high[h >> 58U];
    }
    auto chi_square = [&](const std::array<int, 64>& counts) {
      const double expected = static_cast<double>(names) / 64;
      double sum = 0;
      for (const int c : counts) sum += (c - expected) * (c - expected) / expected;
      return sum;
    };
    INFO("names like \"" << format << "\"");
    CHECK(chi_square(low) < 104);
    CHECK(chi_square(high) < 104);
  }
}

// A Hash that lies about avalanching: every component must stay exact (all keys collide in one
// shard, one bucket chain and one filter slot), only slower.
TEST_CASE("a Hash that claims is_avalanching but collides everything is slow, not wrong") {
  constexpr std::size_t count = 40;

  SECTION("rc_map") {
    tandem::rc_map<std::string, std::string, constant_claiming_hash, tandem::string_equal> map(8);
    std::vector<tandem::rc_map<std::string, std::string, constant_claiming_hash,
                               tandem::string_equal>::handle>
        handles;
    for (std::size_t i = 0; i < count; ++i) {
      handles.push_back(map.get_or_insert_with(name_of(i), [i] { return name_of(i + 1000); }));
    }
    CHECK(map.size() == count);
    for (std::size_t i = 0; i < count; ++i) {
      const auto found = map.get(std::string_view(name_of(i)));
      REQUIRE(found.has_value());
      CHECK(**found == name_of(i + 1000));
    }
    for (std::size_t i = 0; i < count; i += 2) handles[i] = {};  // the last handle erases
    for (std::size_t i = 0; i < count; ++i) CHECK(map.contains(name_of(i)) == (i % 2 == 1));
    CHECK(map.size() == count / 2);
  }

  SECTION("event_bus (the absent-topic filter sees one slot for every topic)") {
    using bus_type =
        tandem::event_bus<std::string, std::string, constant_claiming_hash, tandem::string_equal>;
    bus_type bus;
    std::vector<bus_type::subscription> subscriptions;
    for (std::size_t i = 0; i < count; ++i) subscriptions.push_back(bus.subscribe(name_of(i)));
    for (std::size_t i = 0; i < count; ++i) {
      CHECK(bus.publish(std::string_view(name_of(i)), name_of(i + 2000)) == 1);
    }
    CHECK(bus.publish("nobody listens here", std::string("lost")) == 0);
    for (std::size_t i = 0; i < count; ++i) {
      const auto received = subscriptions[i].try_receive();
      REQUIRE(received.has_value());
      CHECK(*received == name_of(i + 2000));
    }
    for (std::size_t i = 0; i < count; i += 2) subscriptions[i].unsubscribe();  // erases the topics
    for (std::size_t i = 0; i < count; ++i) {
      CHECK(bus.subscriber_count(name_of(i)) == (i % 2 == 1 ? 1U : 0U));
      CHECK(bus.publish(std::string_view(name_of(i)), name_of(i)) == (i % 2 == 1 ? 1U : 0U));
    }
  }

  SECTION("registry") {
    tandem::registry<std::string, std::string, constant_claiming_hash, tandem::string_equal>
        registry;
    for (std::size_t i = 0; i < count; ++i) {
      CHECK(*registry.get_or_create_with(name_of(i), [i] { return name_of(i + 3000); }) ==
            name_of(i + 3000));
    }
    for (std::size_t i = 0; i < count; ++i) {
      const auto found = registry.find(std::string_view(name_of(i)));
      REQUIRE(found != nullptr);
      CHECK(*found == name_of(i + 3000));
    }
    CHECK(registry.find("absent") == nullptr);
  }
}

namespace {
// Whether call() throws std::invalid_argument whose message says `says` (by default, that it
// was given a null const char*).
template <class Call>
bool names_null(Call call, std::string_view says = "a null const char* is not a") {
  try {
    static_cast<void>(call());
  } catch (const std::invalid_argument& error) {
    return std::string_view(error.what()).find(says) != std::string_view::npos;
  }
  return false;
}
}  // namespace

TEST_CASE("string_equal agrees with string_view equality at every length and byte") {
  // string_equal compares up to 32 bytes with overlapping fixed-size loads: every length from
  // 0 to 70 (each of its branches and memcmp beyond), strings at every offset of a buffer (any
  // alignment), equal, and different in exactly one byte at each position, or in length.
  const tandem::string_equal equal;
  std::array<char, 160> left{};
  std::array<char, 160> right{};
  for (std::size_t i = 0; i < left.size(); ++i) {
    left[i] = right[i] = static_cast<char>('a' + static_cast<int>(i % 26));
  }
  std::size_t compared = 0;
  for (std::size_t length = 0; length <= 70; ++length) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      const std::string_view a(left.data() + offset, length);
      const std::string_view b(right.data() + 8 - offset, length);
      // A copy equal to a, at another address and alignment.
      std::string same(a);
      CHECK(equal(a, same));
      CHECK(equal(same, a));
      ++compared;
      for (std::size_t position = 0; position < length; ++position) {
        std::string other(a);
        other[position] = static_cast<char>(other[position] ^ 0x20);
        CHECK_FALSE(equal(a, other));
        CHECK_FALSE(equal(other, a));
        ++compared;
      }
      if (length > 0) CHECK_FALSE(equal(a, a.substr(0, length - 1)));
      CHECK(equal(a, b) == (a == b));
    }
  }
  CHECK(compared > 20000);
  static_assert(tandem::string_equal{}("tenant-0042", std::string_view("tenant-0042")));
  static_assert(!tandem::string_equal{}("tenant-0042", std::string_view("tenant-0043")));
}

TEST_CASE("a null const char* key throws invalid_argument in every component") {
  // std::string_view(nullptr) is undefined (strlen of a null pointer): a lookup by a null
  // const char* crashed, or worse, instead of failing (found by review, 2026-12-02).
  const char* const null_key = nullptr;
  CHECK(names_null([&] { return tandem::string_hash{}(null_key); }));
  tandem::rc_map<std::string, std::string> map;
  CHECK(names_null([&] { return map.get_or_insert_with(null_key, [] { return std::string(); }); }));
  CHECK(names_null([&] { return map.get(null_key); }));
  CHECK(names_null([&] { return map.contains(null_key); }));
  CHECK(map.size() == 0);
  tandem::event_bus<std::string> bus;
  CHECK(names_null([&] { return bus.publish(null_key, std::string(40, 'm')); }));
  CHECK(names_null([&] { return bus.subscribe(null_key); }));
  auto in = bus.inbox();
  CHECK(names_null([&] { return in.subscribe(null_key); }));
  CHECK(names_null([&] { return in.unsubscribe(null_key); }));
  CHECK(names_null([&] { return bus.subscribe(in, null_key); }));
  CHECK(names_null([&] { return bus.unsubscribe(in, null_key); }));
  CHECK(names_null([&] { return bus.publish_from(in, null_key, std::string(40, 'm')); }));
  CHECK(names_null([&] { return bus.subscriber_count(null_key); }));
  // The topic is checked first, whatever the state of the inbox or subscription: a moved-from
  // inbox's subscribe(null), and the bus's calls that take a moved-from inbox or subscription,
  // threw tandem::subscription_closed instead (rule 52, found by review 2026-12-04).
  auto taken = std::move(in);
  CHECK(names_null([&] { return in.subscribe(null_key); }));    // NOLINT(bugprone-use-after-move)
  CHECK(names_null([&] { return in.unsubscribe(null_key); }));  // NOLINT(bugprone-use-after-move)
  CHECK(names_null([&] { return bus.subscribe(in, null_key); }));
  CHECK(names_null([&] { return bus.unsubscribe(in, null_key); }));
  CHECK(names_null([&] { return bus.publish_from(in, null_key, std::string(40, 'm')); }));
  auto sub = bus.subscribe(std::string(40, 't'));
  auto moved_sub = std::move(sub);
  CHECK(names_null([&] { return bus.publish_from(sub, null_key, std::string(40, 'm')); }));
  CHECK(names_null([&] { return bus.publish_from(moved_sub, null_key, std::string(40, 'm')); }));
  auto [map_writer, map_reader] = tandem::make_double_buffer_map<std::string, int>();
  auto& writer = map_writer;  // (clang 14 captures no structured binding)
  auto& reader = map_reader;
  CHECK(names_null([&] { writer.insert(null_key, 1); }));
  CHECK(names_null([&] { writer.insert_or_assign(null_key, 1); }));
  CHECK(names_null([&] { writer.erase(null_key); }));
  CHECK(names_null([&] { return reader.get(null_key); }));
  CHECK(writer.pending() == 0);
  struct named {
    explicit named(const std::string& key) : name(key) {}
    std::string name;
  };
  tandem::registry<named, std::string> names;
  CHECK(names_null([&] { return names.get_or_create(null_key); }));
  CHECK(names_null([&] { return names.find(null_key); }));
  CHECK(names_null([&] { return names.contains(null_key); }));
  CHECK(names_null([&] { return names.erase(null_key); }));
  CHECK(names_null([&] { return names.accessor(null_key); }));
  CHECK(names_null([&] { return names.restore(null_key); }));
  CHECK(names_null([&] { names.override(null_key, std::make_shared<named>("mock")); }));
  CHECK(names_null([&] { names.declare(null_key, [] { return named("x"); }); }));
  CHECK(names.size() == 0);
}

TEST_CASE("registry error messages name a null pointer key") {
  // A registry keyed by a pointer type described its key as a string: a null one was
  // std::string_view(nullptr), undefined (found by review, 2026-12-02).
  struct hash_address {
    std::size_t operator()(const char* p) const noexcept { return std::hash<const char*>{}(p); }
  };
  tandem::registry<int, const char*, hash_address> by_address;
  CHECK(tandem::detail::describe_registry_key(static_cast<const char*>(nullptr)) == "a null key");
  try {
    (void)by_address.get_or_create_with(static_cast<const char*>(nullptr),
                                        [] { return std::shared_ptr<int>(); });
    FAIL("a null instance was accepted");
  } catch (const std::invalid_argument& error) {
    CHECK(std::string_view(error.what()).find("a null key") != std::string_view::npos);
  }
}

TEST_CASE("a null const char* is refused before a key is built from it") {
  // With a Hash that is not transparent a lookup converts its argument to the key type:
  // std::string(nullptr) is undefined (libstdc++ throws std::logic_error, libc++ does not check).
  struct plain_hash {
    std::size_t operator()(const std::string& key) const noexcept {
      return std::hash<std::string>{}(key);
    }
  };
  using plain_equal = std::equal_to<std::string>;
  const char* const null_key = nullptr;
  tandem::rc_map<std::string, std::string, plain_hash, plain_equal> map;
  CHECK(names_null([&] { return map.get(null_key); }));
  CHECK(names_null([&] { return map.contains(null_key); }));
  // The inserting functions too (found by review, 2026-12-04: they built the key unchecked;
  // under libc++ std::string(nullptr) crashed).
  CHECK(names_null([&] { return map.insert(null_key, std::string("v")); }));
  CHECK(names_null([&] { return map.try_emplace(null_key, "v"); }));
  CHECK(names_null(
      [&] { return map.get_or_insert_with(null_key, [] { return std::string("v"); }); }));
  CHECK(map.size() == 0);
  tandem::event_bus<std::string, std::string, plain_hash, plain_equal> bus;
  CHECK(names_null([&] { return bus.publish(null_key, std::string(40, 'm')); }));
  CHECK(names_null([&] { return bus.subscriber_count(null_key); }));
  CHECK(names_null([&] { return bus.subscribe(null_key); }));
  auto in = bus.inbox();
  CHECK(names_null([&] { return in.subscribe(null_key); }));
  CHECK(names_null([&] { return in.unsubscribe(null_key); }));
  auto [writer, bound_reader] =
      tandem::make_double_buffer_map<std::string, int, plain_hash, plain_equal>();
  auto& reader = bound_reader;  // (clang 14 captures no structured binding)
  CHECK(names_null([&] { return reader.read().contains(null_key); }));
  CHECK(names_null([&] { return reader.get(null_key); }));
  CHECK(names_null([&] { return reader.contains(null_key); }));
  // The writer's insert, insert_or_assign and erase took K by value: the caller's conversion
  // built std::string(nullptr) (libstdc++: std::logic_error; libc++: a crash in strlen) before
  // tandem's code ran (found by review, 2026-12-04; rule 52).
  auto& map_writer = writer;
  CHECK(names_null([&] { map_writer.insert(null_key, 1); }));
  CHECK(names_null([&] { map_writer.insert_or_assign(null_key, 1); }));
  CHECK(names_null([&] { map_writer.erase(null_key); }));
  CHECK(map_writer.pending() == 0);
  // The key first, whatever the state of the reader or writer.
  auto taken_writer = std::move(map_writer);
  auto taken_reader = std::move(reader);
  CHECK(names_null([&] { map_writer.insert(null_key, 1); }));    // NOLINT(bugprone-use-after-move)
  CHECK(names_null([&] { map_writer.erase(null_key); }));        // NOLINT(bugprone-use-after-move)
  CHECK(names_null([&] { return reader.get(null_key); }));       // NOLINT(bugprone-use-after-move)
  CHECK(names_null([&] { return reader.contains(null_key); }));  // NOLINT(bugprone-use-after-move)
  struct named {
    explicit named(const std::string& key) : name(key) {}
    std::string name;
  };
  tandem::registry<named, std::string, plain_hash, plain_equal> names;
  CHECK(names_null([&] { return names.get_or_create(null_key); }));
  CHECK(names_null([&] { return names.accessor(null_key); }));
}

namespace {
// An interned-string handle: converts to both const char* and std::string_view.
struct symbol {
  const char* text;
  operator const char*() const noexcept { return text; }  // NOLINT(google-explicit-constructor)
  operator std::string_view() const noexcept {
    return text;
  }  // NOLINT(google-explicit-constructor)
};
}  // namespace

TEST_CASE("a key convertible to const char* and string_view works in every component") {
  // string_hash's null check was a plain const char* overload: with the string_view one it made
  // such a key ambiguous, and no component compiled with it (review, 2026-12-02).
  static_assert(std::is_invocable_v<const tandem::string_hash&, const symbol&>);
  const symbol key{"room:7"};
  CHECK(tandem::string_hash{}(key) == tandem::string_hash{}(std::string_view("room:7")));
  tandem::rc_map<std::string, int> map;
  auto handle = map.get_or_insert_with(key, [] { return 7; });
  CHECK(map.contains(key));
  tandem::event_bus<std::string> bus;
  auto sub = bus.subscribe(key);
  CHECK(bus.publish(key, std::string("m")) == 1);
  struct named {
    explicit named(const std::string& k) : name(k) {}
    std::string name;
  };
  tandem::registry<named, std::string> names;
  CHECK(names.get_or_create(key)->name == "room:7");
  CHECK(names.contains(key));
  auto [writer, bound_reader] = tandem::make_double_buffer_map<std::string, int>();
  writer.insert_or_assign("room:7", 1);
  writer.publish();
  CHECK(bound_reader.read().contains(key));
}

TEST_CASE("a pointer key may be null whatever pointer type names it") {
  // The null check refused a null char* for a const char* Key, whose null is a valid key.
  struct hash_address {
    std::size_t operator()(const char* p) const noexcept { return std::hash<const char*>{}(p); }
  };
  char* const null_key = nullptr;
  tandem::registry<int, const char*, hash_address> by_address;
  CHECK(by_address.find(null_key) == nullptr);
  CHECK_FALSE(by_address.contains(null_key));
  tandem::rc_map<const char*, int, hash_address> map;
  CHECK_FALSE(map.contains(null_key));
  // A nullptr literal for a string key is refused like a null const char*, not built into a
  // std::string (undefined; libstdc++ throws logic_error).
  tandem::rc_map<std::string, int> by_name;
  CHECK(names_null([&] { return by_name.contains(nullptr); }, "nullptr is not a key"));
  CHECK(names_null([&] { return tandem::string_hash{}(nullptr); }, "nullptr is not a key"));
}

TEST_CASE("a null topic's error names a topic and a nullptr literal as nullptr") {
  // The buses called a null topic "a null const char* ... key", and a nullptr literal "a null
  // const char*" (noticed by a review, 2026-12-03).
  const char* const null_topic = nullptr;
  tandem::event_bus<std::string> bus;
  CHECK(names_null([&] { return bus.publish(null_topic, std::string(40, 'm')); },
                   "tandem::event_bus: a null const char* is not a topic"));
  CHECK(names_null([&] { return bus.subscribe(nullptr); },
                   "tandem::event_bus: nullptr is not a topic"));
  auto in = bus.inbox();
  CHECK(names_null([&] { return in.subscribe(null_topic); },
                   "tandem::inbox: a null const char* is not a topic"));
  tandem::rc_map<std::string, int> map;
  CHECK(names_null([&] { return map.get(null_topic); },
                   "tandem::rc_map: a null const char* is not a key"));
  CHECK(names_null([&] { return map.get(nullptr); }, "tandem::rc_map: nullptr is not a key"));
}
