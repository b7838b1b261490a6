// connection_pools: per-tenant connection pools that exist exactly while requests use them.
//
// A server handles requests for many tenants. Each tenant's requests share one connection pool;
// the pool is opened by the first request that needs it and closed as soon as the last request
// using it finishes -- nobody keeps a "who is active" list. tandem::rc_map does the bookkeeping:
// get_or_insert_with opens the pool once (concurrent first requests wait for that one opening
// instead of opening two), each request holds a handle while it runs, and the last handle to go
// erases the entry and closes the pool.
//
// The output shows that guarantee (part 1) and its price (part 2): a request that finds no
// live handle opens the pool again, so short requests that do not overlap reopen it every time.
// Parts 3 and 4 measure the two remedies: a handle kept by the server keeps the pool open
// (until the server drops it), and the linger option (tandem::rc_map_options::linger, issue 16)
// keeps a pool for an idle time after its last request, so the next request within that time
// reuses it; idle pools close by themselves once the time has passed (collect(), or lazily on
// later map operations), and max_lingering bounds how many idle pools stay open.
#include <tandem/rc_map.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr int connections_per_pool = 4;
constexpr std::array<std::string_view, 5> tenants{"acme", "globex", "initech", "umbrella", "hooli"};

std::atomic<int> pools_opened{0};
std::atomic<int> pools_closed{0};
std::array<std::atomic<int>, tenants.size()> opened_per_tenant{};  // pool opens, by tenant

void count_open(std::string_view tenant) {
  for (std::size_t t = 0; t < tenants.size(); ++t) {
    if (tenants[t] == tenant) opened_per_tenant[t].fetch_add(1);
  }
}

// Owns (pretend) connections: neither copyable nor movable, which rc_map does not need.
class connection_pool {
 public:
  connection_pool(std::string_view tenant, int connections, bool verbose)
      : tenant_(tenant), connections_(connections), verbose_(verbose) {
    pools_opened.fetch_add(1);
    count_open(tenant_);
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
      std::string(tenant), [&] { return connection_pool(tenant, connections_per_pool, verbose); });
  pool->run_query();
}

// The burst: 4 threads x 10000 short requests, round-robin over the tenants, started together.
// Meanwhile a long report for globex holds globex's pool for the whole burst.
constexpr int burst_threads = 4;
constexpr int requests_per_thread = 10000;

void run_burst(pool_map& pools) {
  const pool_map::handle report = pools.get_or_insert_with(
      "globex", [] { return connection_pool("globex", connections_per_pool, false); });
  std::latch start(burst_threads);
  std::vector<std::thread> workers;
  for (int w = 0; w < burst_threads; ++w) {
    workers.emplace_back([&pools, &start, w] {
      start.arrive_and_wait();
      for (int i = 0; i < requests_per_thread; ++i) {
        handle_request(pools, tenants[static_cast<std::size_t>(i + w) % tenants.size()], false);
      }
    });
  }
  for (auto& w : workers) w.join();
  report->run_query();
}  // the report ends: its handle goes, and globex's pool closes

}  // namespace

int main() {
  pool_map pools;

  std::printf(
      "What this shows: rc_map keeps a tenant's pool open exactly while requests hold a handle\n"
      "to it: concurrent first requests open one pool, not several, and nobody keeps a list of\n"
      "active tenants. The cost to watch: a request that finds no live handle opens the pool.\n");

  std::printf("1. three concurrent requests for acme share one pool:\n");
  {
    std::latch all_started(3);
    std::latch checked(1);
    std::vector<std::thread> requests;
    for (int i = 0; i < 3; ++i) {
      requests.emplace_back([&] {
        auto pool = pools.get_or_insert_with(
            "acme", [] { return connection_pool("acme", connections_per_pool, /*verbose=*/true); });
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
  std::printf("  -> one open for three concurrent requests; the last handle closed it.\n");

  constexpr int burst_requests = burst_threads * requests_per_thread;
  std::printf("2. a burst of %d requests for %zu tenants on %d threads:\n", burst_requests,
              tenants.size(), burst_threads);
  pools_opened = 0;
  pools_closed = 0;
  for (auto& count : opened_per_tenant) count = 0;
  run_burst(pools);
  const int burst_opens = pools_opened.load();
  std::printf("  pools opened: %d, closed: %d, still open: %zu\n  opens by tenant:", burst_opens,
              pools_closed.load(), pools.size());
  for (std::size_t t = 0; t < tenants.size(); ++t) {
    std::printf(" %s %d", std::string(tenants[t]).c_str(), opened_per_tenant[t].load());
  }
  std::printf(
      "\n  -> %d of %d requests found no live handle and paid a pool open (%d connections\n"
      "     each in a real pool: %d connection setups). rc_map erases an entry with its last\n"
      "     handle, so a tenant whose requests do not overlap reopens its pool per request;\n"
      "     globex's pool, held by the report throughout, was opened %d time%s.\n",
      burst_opens, burst_requests, connections_per_pool, burst_opens * connections_per_pool,
      opened_per_tenant[1].load(), opened_per_tenant[1].load() == 1 ? "" : "s");

  std::printf("3. the same burst while the server keeps one handle per tenant:\n");
  const int opened_before = pools_opened.load();
  {
    std::vector<pool_map::handle> keep_open;
    for (std::string_view tenant : tenants) {
      keep_open.push_back(pools.get_or_insert_with(std::string(tenant), [tenant] {
        return connection_pool(tenant, connections_per_pool, false);
      }));
    }
    run_burst(pools);
  }  // dropping the kept handles closes the pools
  std::printf(
      "  pools opened: %d for %d requests, still open after dropping the handles: %zu\n"
      "  -> to keep a busy tenant's pool warm, hold a handle to it; drop it to close the pool.\n",
      pools_opened.load() - opened_before, burst_requests, pools.size());

  using namespace std::chrono_literals;
  std::printf(
      "4. the same burst with the linger option: an idle pool stays open 200 ms after its last\n"
      "   request (tandem::rc_map_options{.linger = 200ms, .max_lingering = 16}):\n");
  pool_map lingering_pools(tandem::rc_map_options{.linger = 200ms, .max_lingering = 16});
  const int opened_before_linger = pools_opened.load();
  const int closed_before_linger = pools_closed.load();
  run_burst(lingering_pools);
  const int linger_opens = pools_opened.load() - opened_before_linger;
  std::printf(
      "  pools opened: %d for %d requests (without linger: %d); idle pools still open: %zu\n",
      linger_opens, burst_requests, burst_opens, lingering_pools.lingering_count());
  std::this_thread::sleep_for(250ms);  // no request for longer than the linger time
  const std::size_t collected = lingering_pools.collect();
  std::printf(
      "  after 250 ms without requests, collect() closed %zu idle pool%s; pools open: %zu\n"
      "  -> linger turns %d opens into %d, with no handle kept by the server: a pool closes\n"
      "     by itself once its tenant has been idle for the linger time.\n",
      collected, collected == 1 ? "" : "s", lingering_pools.size(), burst_opens, linger_opens);
  const bool linger_closed_all = pools_closed.load() - closed_before_linger == linger_opens;
  return pools.empty() && lingering_pools.empty() && linger_closed_all &&
                 pools_opened.load() == pools_closed.load()
             ? 0
             : 1;
}
