// The consumer program: it must compile against the umbrella header and run.
#include <tandem/tandem.hpp>

#include <atomic>
#include <cstdio>

int main() {
  tandem::sync::cache_padded<std::atomic<int>> counter{0};
  counter->fetch_add(TANDEM_VERSION_MAJOR + 1);
  std::printf("tandem %d.%d.%d consumed, counter=%d\n", tandem::version.major,
              tandem::version.minor, tandem::version.patch, counter->load());
  return counter->load() == TANDEM_VERSION_MAJOR + 1 ? 0 : 1;
}
