// The redis component's consumer program: found with find_package(tandem CONFIG REQUIRED
// COMPONENTS redis), linked to tandem::redis. No Redis server is needed: it points the bus at a
// loopback port nothing listens on and checks that local delivery works regardless (the bus
// keeps reconnecting in the background and is destroyed cleanly).
#include <tandem/redis_bus.hpp>

#include <cstdio>
#include <string>

int main() {
  tandem::redis_options options;
  options.port = 1;  // nothing listens there: Redis is "down"
  options.reconnect_min = std::chrono::milliseconds(10);
  tandem::redis_bus<std::string> bus(options);
  auto room = bus.subscribe("room:1");
  const std::size_t reached = bus.publish("room:1", "local delivery does not need Redis");
  const auto message = room.try_receive();
  const bool ok = reached == 1 && message.has_value() &&
                  *message == "local delivery does not need Redis" && !bus.connected();
  std::printf("tandem::redis consumed: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
