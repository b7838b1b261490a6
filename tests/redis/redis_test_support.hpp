// tests/redis/redis_test_support.hpp -- what the Redis tests share: the fixture server's port,
// private servers (start, kill -9, restart on the same port), a raw hiredis client (the
// "foreign client"), hand-made envelopes, and polling with a deadline where Redis gives no
// event to wait on.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

#include <tandem/redis_bus.hpp>

#include "redis_server.hpp"
#include "test_support.hpp"

namespace tandem::test::redis {

using namespace std::chrono_literals;

// The port of the fixture's private server (tests/redis/start_redis.sh).
inline int fixture_port() {
  const char* file = std::getenv("TANDEM_REDIS_PORT_FILE");
  if (file == nullptr)
    throw std::runtime_error("TANDEM_REDIS_PORT_FILE is not set (run via ctest)");
  std::ifstream in(file);
  int port = 0;
  if (!(in >> port) || port <= 0) throw std::runtime_error(std::string("no port in ") + file);
  return port;
}

// A channel prefix no other test (or run) shares: tests run in parallel on one server.
inline std::string unique_prefix(std::string_view what) {
  std::random_device device;
  return "tandem-test:" + std::string(what) + ":" + std::to_string(device()) + ":";
}

inline tandem::redis_options options_for(int port, std::string prefix) {
  tandem::redis_options options;
  options.port = port;
  options.channel_prefix = std::move(prefix);
  options.reconnect_min = 10ms;
  options.reconnect_max = 200ms;
  options.io_timeout = 2000ms;
  return options;
}

// Polls `condition` until it holds or `limit` passes: for states Redis signals to nobody.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::milliseconds>(limit * time_scale());
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// An envelope made by hand (see "The envelope" in redis_bus.hpp), with every length
// overridable, for hostile input.
struct envelope_parts {
  unsigned char version = 1;
  std::string node = "foreign-node-made-by-hand";
  std::uint64_t sequence = 0;
  std::string topic = "readings";
  std::string payload;
  std::int64_t node_length = -1;     // -1: the real one
  std::int64_t topic_length = -1;    // -1: the real one
  std::int64_t payload_length = -1;  // -1: the real one
};

inline std::string make_envelope(const envelope_parts& parts) {
  auto le = [](std::string& out, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFU));
  };
  std::string out = "TB";
  out.push_back(static_cast<char>(parts.version));
  out.push_back(static_cast<char>(
      parts.node_length >= 0 ? parts.node_length : static_cast<std::int64_t>(parts.node.size())));
  out += parts.node;
  le(out, parts.sequence, 8);
  le(out,
     parts.topic_length >= 0 ? static_cast<std::uint64_t>(parts.topic_length) : parts.topic.size(),
     4);
  out += parts.topic;
  le(out,
     parts.payload_length >= 0 ? static_cast<std::uint64_t>(parts.payload_length)
                               : parts.payload.size(),
     4);
  out += parts.payload;
  return out;
}

}  // namespace tandem::test::redis
