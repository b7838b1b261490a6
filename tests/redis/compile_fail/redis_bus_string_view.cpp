// A view is trivially copyable, but its bytes are an address in the sender's memory: the
// default codec must refuse std::string_view (and std::span), naming the requirement. Until
// 2026-12-01 this compiled, and the receiving node read the sender's heap address in its own
// memory.
// expect-error: redis_bus|message_codec|constraints
// expect-concept: message_codec
#include <string_view>

#include <tandem/redis_bus.hpp>

int main() {
  tandem::redis_bus<std::string_view> bus;
  (void)bus;
}
