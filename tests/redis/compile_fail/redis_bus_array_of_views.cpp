// A std::array of views is trivially copyable and has no padding, but its bytes are addresses in
// the sender's memory, as a bare view's are: the default codec must refuse it (and pointers,
// references, iterators and std::type_index, also inside a std::array), naming the requirement.
// Until 2026-12-04 this compiled, and a receiver got a view of whatever address a client on the
// channel chose (rule 64).
// expect-error: redis_bus|message_codec|constraints
// expect-concept: message_codec
#include <array>
#include <string_view>

#include <tandem/redis_bus.hpp>

int main() {
  tandem::redis_bus<std::array<std::string_view, 1>> bus;
  (void)bus;
}
