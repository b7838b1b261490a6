// A Message that is neither std::string nor trivially copyable has no default codec:
// redis_bus must say so, naming the requirement, not fail deep inside the envelope code.
// expect-error: redis_bus|message_codec|constraints
// expect-concept: message_codec
#include <string>
#include <vector>

#include <tandem/redis_bus.hpp>

struct chat_line {
  std::string author;
  std::vector<std::string> words;
};

int main() {
  tandem::redis_bus<chat_line> bus;
  (void)bus;
}
