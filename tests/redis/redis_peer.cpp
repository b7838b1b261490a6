// tests/redis/redis_peer.cpp -- the second process of the two-process test: answers every
// "ping" with a "pong" through Redis until it gets "quit".
//   redis_peer <port> <channel prefix>     exit 0: quit received; 2: nothing for 30 s
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <tandem/redis_bus.hpp>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  if (argc != 3) {
    std::fprintf(stderr, "usage: redis_peer <port> <channel prefix>\n");
    return 64;
  }
  tandem::redis_options options;
  options.port = std::atoi(argv[1]);
  options.channel_prefix = argv[2];
  tandem::redis_bus<std::string> bus(options);
  auto pings = bus.subscribe("ping");
  if (!bus.wait_connected(20s)) {
    std::fprintf(stderr, "redis_peer: not connected: %s\n", bus.last_error().c_str());
    return 1;
  }
  bus.publish("control", "ready");
  for (;;) {
    const std::optional<std::string> ping = pings.receive_for(30s);
    if (!ping) return 2;
    if (*ping == "quit") break;
    bus.publish("pong", "pong: " + *ping);
  }
  return bus.flush(10s) ? 0 : 3;
}
