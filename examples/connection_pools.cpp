// connection_pools: per-tenant connection pools that exist exactly while requests use them.
//
// A server handles requests for many tenants. Each tenant's requests share one connection pool;
// the pool is opened by the first request that needs it and closed as soon as the last request
// using it finishes -- nobody keeps a "who is active" list. tandem::rc_map does the bookkeeping:
// get_or_insert_with opens the pool once (concurrent first requests wait for that one opening
// instead of opening two), each request holds a handle while it runs, and the last handle to go
// erases the entry and closes the pool.
#include <tandem/rc_map.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <latch>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

std::atomic<int> pools_opened{0};
std::atomic<int> pools_closed{0};

// Owns (pretend) connections: neither copyable nor movable, which rc_map does not need.
class connection_pool {
 public:
  connection_pool(std::string_view tenant, int connections, bool verbose)
      : tenant_(tenant), connections_(connections), verbose_(verbose) {
    pools_opened.fetch_add(1);
    if (verbose_)
      std::printf("  open  pool for %s (%d connections)\n", tenant_.c_str(), connections);
  }
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;
  ~connection_pool() {
    pools_closed.fetch_add(1);
    if (verbose_)
      std::printf("  close pool for %s after %d queries\n", tenant_.c_str(), queries_.load());
  }

  void run_query() { queries_.fetch_add(connections_ > 0 ? 1 : 0); }

 private:
  std::string tenant_;
  int connections_;  // a real pool would hold this many open connections
  bool verbose_;
  std::atomic<int> queries_{0};
};

// Transparent hashing: requests look tenants up by std::string_view without building a string.
struct tenant_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
struct tenant_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

using pool_map = tandem::rc_map<std::string, connection_pool, tenant_hash, tenant_equal>;

// One request: borrow the tenant's pool (opening it if this is the only request), use it, and
// let the handle go when done.
void handle_request(pool_map& pools, std::string_view tenant, bool verbose) {
  pool_map::handle pool = pools.get_or_insert_with(
      std::string(tenant), [&] { return connection_pool(tenant, 4, verbose); });
  pool->run_query();
}

}  // namespace

int main() {
  pool_map pools;

  std::printf("1. three concurrent requests for acme share one pool:\n");
  {
    std::latch all_started(3);
    std::latch checked(1);
    std::vector<std::thread> requests;
    for (int i = 0; i < 3; ++i) {
      requests.emplace_back([&] {
        auto pool = pools.get_or_insert_with(
            "acme", [] { return connection_pool("acme", 4, /*verbose=*/true); });
        pool->run_query();
        all_started.count_down();
        checked.wait();  // the request is still running while main looks at the map
      });
    }
    all_started.wait();
    std::printf("  pools open: %zu, requests using acme's pool: %zu\n", pools.size(),
                pools.use_count(std::string_view("acme")));
    checked.count_down();
    for (auto& r : requests) r.join();
  }
  std::printf("  after the requests: acme's pool open? %s; pools open: %zu\n",
              pools.contains(std::string_view("acme")) ? "yes" : "no", pools.size());

  std::printf("2. a burst of 40000 requests for 5 tenants on 4 threads:\n");
  pools_opened = 0;
  pools_closed = 0;
  const std::array<std::string_view, 5> tenants{"acme", "globex", "initech", "umbrella", "hooli"};
  {
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w) {
      workers.emplace_back([&, w] {
        // A long-running report for one tenant keeps that pool open the whole time.
        pool_map::handle report;
        if (w == 0)
          report = pools.get_or_insert_with("globex",
                                            [] { return connection_pool("globex", 4, false); });
        for (int i = 0; i < 10000; ++i) {
          handle_request(pools, tenants[static_cast<std::size_t>(i + w) % tenants.size()], false);
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  std::printf("  pools opened: %d, closed: %d, still open: %zu\n", pools_opened.load(),
              pools_closed.load(), pools.size());
  std::printf(
      "  (pools of tenants with no request in flight were closed and reopened on\n"
      "   demand; globex's stayed open while its report ran)\n");
  return pools.empty() && pools_opened.load() == pools_closed.load() ? 0 : 1;
}
