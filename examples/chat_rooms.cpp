// chat_rooms: tandem::event_bus as a chat server's room registry.
//
// Each user is a thread. A user joins some rooms (subscribe: the first member creates the
// room), posts to them (publish_from: everyone in the room but the poster receives it), reads
// what the others posted, and leaves (the subscription is destroyed: the last member to leave
// erases the room). Nobody creates or deletes rooms by hand, and the open room count drops to
// zero on its own. The users leave one after another so the output is the same on every run.
#include <tandem/event_bus.hpp>
#include <tandem/sync/backoff.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct chat_message {
  std::string from;
  std::string text;
};

struct user {
  std::string_view name;
  std::vector<std::string_view> rooms;
};

std::mutex print_mutex;

template <class... Args>
void say(const char* format, Args... args) {
  const std::lock_guard<std::mutex> lock(print_mutex);
  std::printf(format, args...);
  std::fflush(stdout);
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  tandem::event_bus<chat_message> bus;

  const std::array<user, 4> users{{
      {"alice", {"lobby", "cpp"}},
      {"bob", {"lobby", "rust"}},
      {"carol", {"lobby", "cpp", "rust"}},
      {"dave", {"cpp"}},
  }};
  constexpr int posts_per_room = 2;

  auto members_of = [&](std::string_view room) {
    int count = 0;
    for (const user& u : users) {
      for (std::string_view r : u.rooms) count += r == room ? 1 : 0;
    }
    return count;
  };

  std::latch joined(static_cast<std::ptrdiff_t>(users.size()));
  std::latch all_read(static_cast<std::ptrdiff_t>(users.size()) + 1);
  constexpr std::uint32_t nobody_yet = ~std::uint32_t{0};
  std::atomic<std::uint32_t> leaving_turn{nobody_yet};  // whose turn it is to leave
  std::atomic<int> failures{0};

  std::vector<std::thread> threads;
  for (std::size_t u = 0; u < users.size(); ++u) {
    threads.emplace_back([&, u] {
      const user& me = users[u];
      std::vector<tandem::event_bus<chat_message>::subscription> memberships;
      for (std::string_view room : me.rooms)
        memberships.push_back(bus.subscribe(std::string(room)));
      joined.arrive_and_wait();  // everyone is in before anyone posts

      for (const auto& membership : memberships) {
        for (int n = 1; n <= posts_per_room; ++n) {
          const std::string text = "message " + std::to_string(n) + " in " + membership.topic();
          bus.publish_from(membership, membership.topic(),
                           chat_message{std::string(me.name), text});
        }
      }

      // Read everything the others post to my rooms: (members - 1) * posts_per_room each.
      int read = 0;
      for (auto& membership : memberships) {
        const int expected = (members_of(membership.topic()) - 1) * posts_per_room;
        for (int n = 0; n < expected; ++n) {
          if (auto message = membership.receive_for(10s)) {
            ++read;
          } else {
            ++failures;  // would mean a lost message; the demo reports it below
          }
        }
      }
      all_read.arrive_and_wait();

      // Leave in turn, so the printed room counts are deterministic.
      tandem::sync::wait_until(leaving_turn, [u](std::uint32_t turn) { return turn == u; });
      const std::size_t rooms = memberships.size();
      memberships.clear();  // unsubscribes from every room; empty rooms vanish
      say("%-5s read %2d messages in %zu room(s), left -> rooms open: %zu\n",
          std::string(me.name).c_str(), read, rooms, bus.topic_count());
      leaving_turn.fetch_add(1);
      tandem::sync::atomic_notify_all(leaving_turn);
    });
  }

  joined.wait();
  all_read.arrive_and_wait();
  say("everyone has read -> rooms open: %zu (lobby: %zu members, cpp: %zu, rust: %zu)\n",
      bus.topic_count(), bus.subscriber_count("lobby"), bus.subscriber_count("cpp"),
      bus.subscriber_count("rust"));
  leaving_turn.store(0);
  tandem::sync::atomic_notify_all(leaving_turn);
  for (auto& t : threads) t.join();

  std::printf("everyone has left -> rooms open: %zu\n", bus.topic_count());
  std::printf("publishing to an empty room reaches %zu subscribers\n",
              bus.publish("lobby", chat_message{"nobody", "hello?"}));
  return failures.load() == 0 && bus.topic_count() == 0 ? 0 : 1;
}
