// chat_rooms: tandem::event_bus as a chat server's room registry.
//
// Each user is a thread with ONE inbox (tandem::inbox, like a Phoenix process's mailbox). A
// user joins some rooms (in.subscribe: the first member creates the room), posts to them
// (publish_from: everyone in the room but the poster receives it), reads what the others
// posted from its one inbox -- each envelope says which room it came from -- and leaves (the
// inbox is destroyed: the last member to leave erases the room). Nobody creates or deletes
// rooms by hand, and the open room count drops to zero on its own. The users leave one after
// another so the output is the same on every run.
//
// The output checks each user's count against (members - 1) x posts per room (publish_from
// skips the poster) and lists the rooms still open after each user leaves.
#include <tandem/event_bus.hpp>
#include <tandem/sync/backoff.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <mutex>
#include <optional>
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

constexpr std::array<std::string_view, 3> room_names{"lobby", "cpp", "rust"};

template <class... Args>
void say(const char* format, Args... args) {
  const std::lock_guard<std::mutex> lock(print_mutex);
  std::printf(format, args...);
  std::fflush(stdout);
}

}  // namespace

int main() {
  tandem::event_bus<chat_message> bus;

  // The rooms that still exist, by name: "lobby cpp" (or "none").
  auto open_rooms = [&bus] {
    std::string names;
    for (std::string_view room : room_names) {
      if (bus.subscriber_count(room) == 0) continue;
      if (!names.empty()) names += ' ';
      names += room;
    }
    return names.empty() ? std::string("none") : names;
  };

  const std::array<user, 4> users{{
      {"alice", {"lobby", "cpp"}},
      {"bob", {"lobby", "rust"}},
      {"carol", {"lobby", "cpp", "rust"}},
      {"dave", {"cpp"}},
  }};
  constexpr int posts_per_room = 2;

  std::printf(
      "What this shows: %zu users (threads), each with ONE inbox, join chat rooms (event_bus\n"
      "topics), post %d messages to each, read the others' posts from that one inbox (each\n"
      "envelope names its room) and leave. Why it matters: a room exists exactly while\n"
      "it has members (the first to join creates it, the last to leave erases it), so there is\n"
      "no room list to clean up, and no message is lost or sent back to its poster.\n",
      users.size(), posts_per_room);

  auto members_of = [&](std::string_view room) {
    int count = 0;
    for (const user& u : users) {
      for (std::string_view r : u.rooms) count += r == room ? 1 : 0;
    }
    return count;
  };

  std::latch joined(static_cast<std::ptrdiff_t>(users.size()));
  std::latch posted(static_cast<std::ptrdiff_t>(users.size()));
  std::latch all_read(static_cast<std::ptrdiff_t>(users.size()) + 1);
  constexpr std::uint32_t nobody_yet = ~std::uint32_t{0};
  std::atomic<std::uint32_t> leaving_turn{nobody_yet};  // whose turn it is to leave
  std::atomic<int> failures{0};

  std::vector<std::thread> threads;
  for (std::size_t u = 0; u < users.size(); ++u) {
    threads.emplace_back([&, u] {
      const user& me = users[u];
      std::optional<tandem::inbox<chat_message>> in(bus.inbox());  // one mailbox, many rooms
      for (std::string_view room : me.rooms) static_cast<void>(in->subscribe(room));
      joined.arrive_and_wait();  // everyone is in before anyone posts

      for (std::string_view room : me.rooms) {
        for (int n = 1; n <= posts_per_room; ++n) {
          const std::string text = "message " + std::to_string(n) + " in " + std::string(room);
          bus.publish_from(*in, room, chat_message{std::string(me.name), text});
        }
      }
      posted.arrive_and_wait();  // every post is in its inboxes now

      // Read everything from the one inbox, whichever room it came from; count per room.
      int read = 0;
      int own = 0;        // messages this user posted itself: publish_from must skip the poster
      int misrouted = 0;  // envelopes naming a room this user is not in
      while (auto envelope = in->try_receive()) {
        ++read;
        own += envelope->message().from == me.name ? 1 : 0;
        misrouted +=
            std::find(me.rooms.begin(), me.rooms.end(), envelope->topic()) == me.rooms.end() ? 1
                                                                                             : 0;
      }
      int expected_total = 0;  // (members - 1) * posts_per_room per room
      for (std::string_view room : me.rooms) {
        expected_total += (members_of(room) - 1) * posts_per_room;
      }
      if (read != expected_total || own != 0 || misrouted != 0) ++failures;
      all_read.arrive_and_wait();

      // Leave in turn, so the printed room counts are deterministic.
      tandem::sync::wait_until(leaving_turn, [u](std::uint32_t turn) { return turn == u; });
      const std::size_t rooms = in->topics().size();
      in.reset();  // ~inbox leaves every room; empty rooms vanish
      say("%-5s read %2d of %2d messages (%d own) in %zu room(s), left -> rooms open: %zu (%s)\n",
          std::string(me.name).c_str(), read, expected_total, own, rooms, bus.topic_count(),
          open_rooms().c_str());
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

  std::printf(
      "  -> each user expects (members - 1) x %d posts per room, none of its own: publish_from\n"
      "     delivers to every member but the poster.\n"
      "everyone has left -> rooms open: %zu\n",
      posts_per_room, bus.topic_count());
  const std::size_t reached = bus.publish("lobby", chat_message{"nobody", "hello?"});
  std::printf(
      "publishing to the empty lobby reaches %zu subscribers; rooms open after it: %zu\n"
      "  -> publish returns how many received the message, and does not recreate the room.\n",
      reached, bus.topic_count());
  return failures.load() == 0 && bus.topic_count() == 0 ? 0 : 1;
}
