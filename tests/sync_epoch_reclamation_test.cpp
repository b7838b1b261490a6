// Tests for include/tandem/sync/epoch_reclamation.hpp.
#include <tandem/sync/epoch_reclamation.hpp>

#include <atomic>
#include <cstdint>
#include <latch>
#include <limits>
#include <thread>

#include "test_support.hpp"

using tandem::sync::epoch_read_section;
using tandem::sync::oldest_announced_epoch;
using tandem::sync::retire_stamp;

namespace {
constexpr std::uint64_t nobody = std::numeric_limits<std::uint64_t>::max();
// An object retired with `stamp` may be freed when this holds.
bool may_free(std::uint64_t stamp) {
  return oldest_announced_epoch() >= stamp;
}
}  // namespace

TEST_CASE("with no read section running, anything retired may be freed at once") {
  const std::uint64_t stamp = retire_stamp();
  CHECK(oldest_announced_epoch() == nobody);
  CHECK(may_free(stamp));
}

TEST_CASE("an object retired while a read section runs is kept until the section ends") {
  tandem::test::watchdog dog("epoch reclamation");
  std::latch inside(1);
  std::latch retired(1);
  std::latch checked(1);
  std::thread reader([&] {
    {
      const epoch_read_section section;
      inside.count_down();
      retired.wait();  // the writer retires while we are inside
      checked.wait();
    }
  });
  inside.wait();
  const std::uint64_t stamp = retire_stamp();
  retired.count_down();
  CHECK_FALSE(may_free(stamp));  // the reader announced an older epoch
  checked.count_down();
  reader.join();
  CHECK(may_free(stamp));
}

TEST_CASE("a read section that begins after the retirement does not hold it back") {
  const std::uint64_t stamp = retire_stamp();
  const epoch_read_section section;  // announces an epoch >= stamp
  CHECK(may_free(stamp));
  const std::uint64_t later = retire_stamp();
  CHECK_FALSE(may_free(later));
}

TEST_CASE("nested read sections share the outermost announce") {
  const std::uint64_t before = retire_stamp();
  {
    const epoch_read_section outer;
    const std::uint64_t announced = oldest_announced_epoch();
    CHECK(announced >= before);
    const std::uint64_t stamp = retire_stamp();
    {
      const epoch_read_section inner;  // must not re-announce the newer epoch
      CHECK(oldest_announced_epoch() == announced);
      CHECK_FALSE(may_free(stamp));
    }
    CHECK_FALSE(may_free(stamp));  // the outer section still runs
  }
  CHECK(oldest_announced_epoch() == nobody);
}

TEST_CASE("threads that exit leave no announce behind") {
  tandem::test::watchdog dog("epoch slot reuse");
  for (int i = 0; i < 500; ++i) {
    std::thread([] { const epoch_read_section section; }).join();
  }
  CHECK(oldest_announced_epoch() == nobody);
}
