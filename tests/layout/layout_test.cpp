// No tandem type's layout depends on NDEBUG or TANDEM_ENABLE_ASSERTS: a library compiled with
// -DNDEBUG and an application compiled without it share objects. This unit is compiled with
// assertions on; layout_ndebug.cpp with NDEBUG and TANDEM_ENABLE_ASSERTS unset.
#undef NDEBUG
#include "public_types.hpp"

#include <string>
#include <vector>

#include "test_support.hpp"

namespace tandem::test::layout {
std::vector<fact> facts_without_asserts();
bool asserts_on_in_ndebug_unit();
std::size_t read_size_without_asserts(dbm::reader& reader, const std::string& key);
}  // namespace tandem::test::layout

namespace layout = tandem::test::layout;

TEST_CASE("layout: every public type has one size and alignment with and without NDEBUG") {
  REQUIRE(TANDEM_ENABLE_ASSERTS != 0);
  REQUIRE_FALSE(layout::asserts_on_in_ndebug_unit());
  std::vector<layout::fact> with_asserts;
#define TANDEM_LAYOUT_FACT(name, ...) \
  with_asserts.push_back({#name, sizeof(__VA_ARGS__), alignof(__VA_ARGS__)});
  TANDEM_LAYOUT_TYPES(TANDEM_LAYOUT_FACT)
#undef TANDEM_LAYOUT_FACT
  const std::vector<layout::fact> without = layout::facts_without_asserts();
  REQUIRE(with_asserts.size() == without.size());
  for (std::size_t i = 0; i < with_asserts.size(); ++i) {
    INFO(with_asserts[i].name);
    CHECK(with_asserts[i].size == without[i].size);
    CHECK(with_asserts[i].alignment == without[i].alignment);
  }
}

TEST_CASE("layout: objects made with assertions on are read correctly by an NDEBUG unit") {
  auto [writer, reader] = tandem::make_double_buffer_map<std::string, std::string>();
  const std::string key = "a-key-that-lives-on-the-heap-0001";
  writer.insert(key, std::string(40, 'v'));
  writer.publish();
  CHECK(layout::read_size_without_asserts(reader, key) == 40);
  // And this unit still reads it after the other unit's guard came and went.
  auto guard = reader.read();
  REQUIRE(guard.find(key) != nullptr);
  CHECK(guard.find(key)->size() == 40);
}
