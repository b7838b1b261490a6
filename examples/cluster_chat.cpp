// cluster_chat: two processes chatting through Redis with tandem::redis_bus.
//
// Each process is a node: it owns a redis_bus, subscribes to the room, and publishes its lines
// to it. A publish reaches the node's own subscribers at once and every other node through
// Redis; nobody sees their own line twice. Alice starts Bob (a second process of this same
// program), waits for his "joined", and then they take turns: each line is answered before
// the next is sent, so the output is the same on every run.
//
//   cluster_chat                       # the demo: starts a private redis-server, then Alice
//   cluster_chat --port 6379           # Alice against your Redis (Bob is started for you)
//   cluster_chat --port 6379 --bob     # Bob alone (Alice must be running elsewhere)
//
// Without hiredis (tandem::redis not built) or without redis-server the demo prints a note
// and exits 0.
#include <cstdio>

#if TANDEM_EXAMPLE_HAVE_REDIS

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <tandem/redis_bus.hpp>

extern char** environ;

namespace {

using namespace std::chrono_literals;

// One line of the chat, as it travels: "<name>: <text>".
using line = std::string;

tandem::redis_options node_options(int port) {
  tandem::redis_options options;
  options.port = port;
  options.channel_prefix = "cluster_chat:";  // every node with this prefix is in the chat
  return options;
}

const std::vector<std::string> alice_lines = {"hi Bob, are you on the other process?",
                                              "I publish on my node, you read on yours",
                                              "and neither of us gets our own line back", "bye!"};
const std::vector<std::string> bob_lines = {
    "yes, a whole other process, via Redis", "Redis carries it, tandem wraps it in an envelope",
    "right: the node name in the envelope sees to that", "bye Alice"};

// Bob: join, announce himself, answer each of Alice's lines with his next one.
int run_bob(int port) {
  tandem::redis_bus<line> bus(node_options(port));
  auto room = bus.subscribe("room:lobby");
  if (!bus.wait_connected(10s)) {
    std::fprintf(stderr, "bob: cannot reach Redis: %s\n", bus.last_error().c_str());
    return 1;
  }
  bus.publish("room:presence", "bob joined");
  for (const std::string& reply : bob_lines) {
    const std::optional<line> heard = room.receive_for(20s);
    if (!heard) return 2;
    bus.publish("room:lobby", "bob: " + reply);
    (void)room.try_receive();  // his own line, delivered locally at once (not via Redis)
  }
  return bus.flush(10s) ? 0 : 3;
}

int spawn_self(const char* self, int port, ::pid_t& pid) {
  std::vector<std::string> args{self, "--port", std::to_string(port), "--bob"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return ::posix_spawn(&pid, self, nullptr, nullptr, argv.data(), environ);
}

// Alice: start Bob, wait for him, and chat.
int run_alice(const char* self, int port) {
  tandem::redis_bus<line> bus(node_options(port));
  auto room = bus.subscribe("room:lobby");
  auto presence = bus.subscribe("room:presence");
  if (!bus.wait_connected(10s)) {
    std::fprintf(stderr, "alice: cannot reach Redis: %s\n", bus.last_error().c_str());
    return 1;
  }
  ::pid_t bob = -1;
  if (spawn_self(self, port, bob) != 0) return 1;
  int result = 0;
  if (const std::optional<line> joined = presence.receive_for(20s)) {
    std::printf("[alice's node] %s\n", joined->c_str());
    for (const std::string& text : alice_lines) {
      bus.publish("room:lobby", "alice: " + text);
      std::printf("[alice's node] %s\n", room.receive().c_str());  // her own, locally
      const std::optional<line> answer = room.receive_for(20s);    // Bob's, via Redis
      if (!answer) {
        result = 2;
        break;
      }
      std::printf("[alice's node] %s\n", answer->c_str());
    }
  } else {
    result = 2;
  }
  int status = 0;
  ::waitpid(bob, &status, 0);
  const tandem::redis_bus_stats stats = bus.stats();
  std::printf("alice's node: sent %llu, received %llu, dropped %llu, rejected %llu\n",
              static_cast<unsigned long long>(stats.sent),
              static_cast<unsigned long long>(stats.received),
              static_cast<unsigned long long>(stats.dropped),
              static_cast<unsigned long long>(stats.rejected));
  if (result != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "the chat did not finish (alice %d, bob status %d)\n", result, status);
    return 1;
  }
  return 0;
}

// ---- scaffolding for the demo: a private redis-server on a free port ----------------------

struct private_redis {
  ::pid_t pid = -1;
  int port = 0;
  ~private_redis() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
  }
  bool start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port = 20000 + static_cast<int>((static_cast<unsigned>(::getpid()) * 7919U +
                                       static_cast<unsigned>(attempt) * 104729U) %
                                      40000U);
      std::vector<std::string> args{TANDEM_REDIS_SERVER_PATH,
                                    "--port",
                                    std::to_string(port),
                                    "--bind",
                                    "127.0.0.1",
                                    "--save",
                                    "",
                                    "--appendonly",
                                    "no",
                                    "--loglevel",
                                    "warning"};
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
      const int error = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      if (error != 0) return false;
      for (int i = 0; i < 400; ++i) {  // up to 2 s to answer
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) break;  // the port was taken
        const timeval tv{0, 200000};
        redisContext* probe = redisConnectWithTimeout("127.0.0.1", port, tv);
        const bool up = probe != nullptr && probe->err == 0;
        if (probe != nullptr) redisFree(probe);
        if (up) return true;
        std::this_thread::sleep_for(5ms);
      }
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      pid = -1;
    }
    return false;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  bool bob = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
    if (arg == "--bob") bob = true;
  }
  if (bob) return run_bob(port);
  if (port != 0) return run_alice(argv[0], port);
  if (::access(TANDEM_REDIS_SERVER_PATH, X_OK) != 0) {
    std::printf("cluster_chat: skipped (redis-server is not installed)\n");
    return 0;
  }
  private_redis redis;
  if (!redis.start()) {
    std::printf("cluster_chat: skipped (could not start a private redis-server)\n");
    return 0;
  }
  std::printf("started a private redis-server on loopback\n");
  return run_alice(argv[0], redis.port);
}

#else  // built without tandem::redis

int main() {
  std::printf(
      "cluster_chat: skipped (tandem was built without hiredis: no tandem::redis; "
      "Debian: apt-get install libhiredis-dev redis-server)\n");
  return 0;
}

#endif
