// A bool holding any byte but 0 or 1 is undefined behaviour, and any client that can PUBLISH on
// the bus's channel can send one (found by review, 2026-12-02: UBSan "load of value 2, which is
// not a valid value for type 'bool'", counted as received). default_codec must refuse bool,
// naming the requirement.
// expect-error: redis_bus|message_codec|constraints
// expect-concept: message_codec
#include <tandem/redis_bus.hpp>

int main() {
  tandem::redis_bus<bool> bus;
  (void)bus;
}
