// Benchmarks for include/tandem/redis_bus.hpp.
//
// Question: between two nodes on one machine, how close does tandem::redis_bus come to a
// hand-written hiredis PUBLISH/SUBSCRIBE loop carrying the same messages? (Target: at least
// 0.8x its throughput: tandem adds the envelope, the send queue and the local bus.)
//
// Setup: a private redis-server on a free loopback port, started by this program (persistence
// off), so a benchmark never touches a system Redis. Messages: 64-byte std::string payloads
// carrying the publish time.
//
// Workloads (for tandem and for the baselines):
//  - throughput: publish a burst of 1,000 messages on node A, receive all 1,000 on node B;
//    items_per_second counts cross-node messages.
//      throughput/tandem           redis_bus A -> Redis -> redis_bus B
//      throughput/hiredis_pipelined one connection pipelines the 1,000 PUBLISHes, another
//                                  (SUBSCRIBEd) reads the 1,000 messages -- the fair baseline
//      throughput/hiredis_sync     one redisCommand(PUBLISH) round trip per message, as most
//                                  hand-written code does
//  - latency: one message at a time, A publishes and B receives it; the counters latency_p50
//    and latency_p99 are the one-way latencies in microseconds.
// Compare items_per_second of throughput/tandem with throughput/hiredis_pipelined.
#include <benchmark/benchmark.h>

#if TANDEM_BENCH_HAVE_REDIS

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

#include <tandem/redis_bus.hpp>

#include "redis_server.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t burst = 1000;
constexpr std::size_t payload_bytes = 64;

// ---- a private redis-server for the whole program (tests/redis/redis_server.hpp) ----------
struct bench_server {
  tandem::test::redis::private_server process;
  bool up = false;
  bench_server() {
    try {
      process.start();
      up = true;
    } catch (const std::exception&) {
      // reported by each benchmark (SkipWithError)
    }
  }
  [[nodiscard]] int port() const { return up ? process.port() : 0; }
};

bench_server& server() {
  static bench_server instance;
  return instance;
}

std::string stamped_payload() {
  std::string payload(payload_bytes, 'p');
  const auto now = clock_type::now().time_since_epoch().count();
  std::memcpy(payload.data(), &now, sizeof now);
  return payload;
}

double latency_us(const char* payload) {
  clock_type::rep sent = 0;
  std::memcpy(&sent, payload, sizeof sent);
  return static_cast<double>(clock_type::now().time_since_epoch().count() - sent) / 1000.0;
}

void report_latencies(benchmark::State& state, std::vector<double>& samples) {
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  state.counters["latency_p50_us"] = samples[samples.size() / 2];
  state.counters["latency_p99_us"] = samples[samples.size() * 99 / 100];
}

// ---- tandem ------------------------------------------------------------------------------
tandem::redis_options bench_options(const char* prefix) {
  tandem::redis_options options;
  options.port = server().port();
  options.channel_prefix = prefix;
  options.send_queue_capacity = 4 * burst;
  return options;
}

void tandem_throughput(benchmark::State& state) {
  if (server().port() == 0) return state.SkipWithError("could not start a redis-server");
  tandem::redis_bus<std::string> a(bench_options("bench-tandem-throughput:"));
  tandem::redis_bus<std::string> b(bench_options("bench-tandem-throughput:"));
  auto inbox = b.subscribe("bench");
  if (!a.wait_connected(10s) || !b.wait_connected(10s)) return state.SkipWithError("no Redis");
  std::vector<double> samples;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) a.publish("bench", stamped_payload());
    for (std::size_t i = 0; i < burst; ++i) {
      const std::optional<std::string> m = inbox.receive_for(10s);
      if (!m) return state.SkipWithError("a message was lost");
      if (i == burst - 1) samples.push_back(latency_us(m->data()));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(burst));
  report_latencies(state, samples);
}

void tandem_latency(benchmark::State& state) {
  if (server().port() == 0) return state.SkipWithError("could not start a redis-server");
  tandem::redis_bus<std::string> a(bench_options("bench-tandem-latency:"));
  tandem::redis_bus<std::string> b(bench_options("bench-tandem-latency:"));
  auto inbox = b.subscribe("bench");
  if (!a.wait_connected(10s) || !b.wait_connected(10s)) return state.SkipWithError("no Redis");
  std::vector<double> samples;
  for (auto _ : state) {
    a.publish("bench", stamped_payload());
    const std::optional<std::string> m = inbox.receive_for(10s);
    if (!m) return state.SkipWithError("a message was lost");
    samples.push_back(latency_us(m->data()));
  }
  state.SetItemsProcessed(state.iterations());
  report_latencies(state, samples);
}

// ---- hand-written hiredis ----------------------------------------------------------------
struct contexts {
  redisContext* publisher = nullptr;
  redisContext* subscriber = nullptr;
  std::string channel;
  explicit contexts(std::string name) : channel(std::move(name)) {
    timeval tv{2, 0};
    publisher = redisConnectWithTimeout("127.0.0.1", server().port(), tv);
    subscriber = redisConnectWithTimeout("127.0.0.1", server().port(), tv);
    if (!ok()) return;
    freeReplyObject(redisCommand(subscriber, "SUBSCRIBE %b", channel.data(), channel.size()));
  }
  ~contexts() {
    if (publisher != nullptr) redisFree(publisher);
    if (subscriber != nullptr) redisFree(subscriber);
  }
  contexts(const contexts&) = delete;
  contexts& operator=(const contexts&) = delete;
  [[nodiscard]] bool ok() const {
    return publisher != nullptr && subscriber != nullptr && publisher->err == 0 &&
           subscriber->err == 0;
  }
  // One pub/sub message's payload (the reply is ["message", channel, payload]).
  bool receive(std::vector<double>* samples) {
    void* raw = nullptr;
    if (redisGetReply(subscriber, &raw) != REDIS_OK) return false;
    auto* reply = static_cast<redisReply*>(raw);
    const bool good = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3;
    if (good && samples != nullptr) samples->push_back(latency_us(reply->element[2]->str));
    freeReplyObject(reply);
    return good;
  }
};

void hiredis_pipelined_throughput(benchmark::State& state) {
  if (server().port() == 0) return state.SkipWithError("could not start a redis-server");
  contexts c("bench-hiredis-pipelined");
  if (!c.ok()) return state.SkipWithError("no Redis");
  std::vector<double> samples;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) {
      const std::string payload = stamped_payload();
      redisAppendCommand(c.publisher, "PUBLISH %b %b", c.channel.data(), c.channel.size(),
                         payload.data(), payload.size());
    }
    for (std::size_t i = 0; i < burst; ++i) {
      void* reply = nullptr;
      if (redisGetReply(c.publisher, &reply) != REDIS_OK) return state.SkipWithError("io");
      freeReplyObject(reply);
    }
    for (std::size_t i = 0; i < burst; ++i) {
      if (!c.receive(i == burst - 1 ? &samples : nullptr)) return state.SkipWithError("io");
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(burst));
  report_latencies(state, samples);
}

void hiredis_sync_throughput(benchmark::State& state) {
  if (server().port() == 0) return state.SkipWithError("could not start a redis-server");
  contexts c("bench-hiredis-sync");
  if (!c.ok()) return state.SkipWithError("no Redis");
  std::vector<double> samples;
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) {
      const std::string payload = stamped_payload();
      freeReplyObject(redisCommand(c.publisher, "PUBLISH %b %b", c.channel.data(), c.channel.size(),
                                   payload.data(), payload.size()));
    }
    for (std::size_t i = 0; i < burst; ++i) {
      if (!c.receive(i == burst - 1 ? &samples : nullptr)) return state.SkipWithError("io");
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(burst));
  report_latencies(state, samples);
}

void hiredis_latency(benchmark::State& state) {
  if (server().port() == 0) return state.SkipWithError("could not start a redis-server");
  contexts c("bench-hiredis-latency");
  if (!c.ok()) return state.SkipWithError("no Redis");
  std::vector<double> samples;
  for (auto _ : state) {
    const std::string payload = stamped_payload();
    freeReplyObject(redisCommand(c.publisher, "PUBLISH %b %b", c.channel.data(), c.channel.size(),
                                 payload.data(), payload.size()));
    if (!c.receive(&samples)) return state.SkipWithError("io");
  }
  state.SetItemsProcessed(state.iterations());
  report_latencies(state, samples);
}

}  // namespace

BENCHMARK(tandem_throughput)->Name("throughput/tandem")->UseRealTime();
BENCHMARK(hiredis_pipelined_throughput)->Name("throughput/hiredis_pipelined")->UseRealTime();
BENCHMARK(hiredis_sync_throughput)->Name("throughput/hiredis_sync")->UseRealTime();
BENCHMARK(tandem_latency)->Name("latency/tandem")->UseRealTime();
BENCHMARK(hiredis_latency)->Name("latency/hiredis_sync")->UseRealTime();

#else  // built without hiredis

namespace {
void redis_bus_unavailable(benchmark::State& state) {
  state.SkipWithError("tandem was configured without hiredis or redis-server: no tandem::redis");
  for (auto _ : state) {
  }
}
}  // namespace
BENCHMARK(redis_bus_unavailable);

#endif

BENCHMARK_MAIN();
