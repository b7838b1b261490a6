// default_codec sends a message's object representation, so a struct with padding would send
// whatever the sender's memory held in the padding (found by review, 2026-12-02: a
// `{int; double}` reading sent 4 uninitialised bytes to every subscriber of the channel). It
// must be refused, naming the requirement: write a codec for it.
// expect-error: redis_bus|message_codec|constraints
// expect-concept: message_codec
#include <cstdint>

#include <tandem/redis_bus.hpp>

struct reading {
  std::int32_t sensor;
  double value;  // 4 bytes of padding before it
};

int main() {
  tandem::redis_bus<reading> bus;
  (void)bus;
}
