// tests/redis/redis_test_support.hpp -- what the Redis tests share: the fixture server's port,
// private servers (start, kill -9, restart on the same port), a raw hiredis client (the
// "foreign client"), hand-made envelopes, and polling with a deadline where Redis gives no
// event to wait on.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

#include <tandem/redis_bus.hpp>

#include "test_support.hpp"

extern char** environ;

namespace tandem::test::redis {

using namespace std::chrono_literals;

// The port of the fixture's private server (tests/redis/start_redis.sh).
inline int fixture_port() {
  const char* file = std::getenv("TANDEM_REDIS_PORT_FILE");
  if (file == nullptr)
    throw std::runtime_error("TANDEM_REDIS_PORT_FILE is not set (run via ctest)");
  std::ifstream in(file);
  int port = 0;
  if (!(in >> port) || port <= 0) throw std::runtime_error(std::string("no port in ") + file);
  return port;
}

// A channel prefix no other test (or run) shares: tests run in parallel on one server.
inline std::string unique_prefix(std::string_view what) {
  std::random_device device;
  return "tandem-test:" + std::string(what) + ":" + std::to_string(device()) + ":";
}

inline tandem::redis_options options_for(int port, std::string prefix) {
  tandem::redis_options options;
  options.port = port;
  options.channel_prefix = std::move(prefix);
  options.reconnect_min = 10ms;
  options.reconnect_max = 200ms;
  options.io_timeout = 2000ms;
  return options;
}

// Polls `condition` until it holds or `limit` passes: for states Redis signals to nobody.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::milliseconds>(limit * time_scale());
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A loopback port nobody listens on right now (bound, read back, released).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  ::sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<::sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<::sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/getsockname");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

struct context_free {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using raw_context = std::unique_ptr<redisContext, context_free>;

// A plain hiredis client: the "foreign client" of the hostile-input tests, and the probe
// that tells when a private server answers.
class raw_client {
 public:
  explicit raw_client(int port, const std::string& password = {}) {
    timeval tv{1, 0};
    context_.reset(redisConnectWithTimeout("127.0.0.1", port, tv));
    if (!context_ || context_->err != 0) {
      context_.reset();
      return;
    }
    if (!password.empty()) command({"AUTH", password});
  }
  [[nodiscard]] bool ok() const { return context_ && context_->err == 0; }

  // The command's reply as text ("" for none), or "ERR:<message>" / "IOERR".
  std::string command(std::vector<std::string> args) {
    if (!ok()) return "IOERR";
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(
        context_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (reply == nullptr) return "IOERR";
    std::string text;
    if (reply->type == REDIS_REPLY_ERROR) {
      text = "ERR:" + std::string(reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_INTEGER) {
      text = std::to_string(reply->integer);
    } else if (reply->str != nullptr) {
      text.assign(reply->str, reply->len);
    }
    freeReplyObject(reply);
    return text;
  }

  std::string publish(const std::string& channel, const std::string& bytes) {
    return command({"PUBLISH", channel, bytes});
  }

 private:
  raw_context context_;
};

// A private redis-server of the test's own, on a free loopback port: start(), kill_hard()
// (SIGKILL: a crash, nothing flushed or said goodbye), start() again on the same port.
class private_server {
 public:
  explicit private_server(std::vector<std::string> extra = {})
      : port_(free_port()), extra_(std::move(extra)) {}
  private_server(const private_server&) = delete;
  private_server& operator=(const private_server&) = delete;
  ~private_server() { kill_hard(); }

  [[nodiscard]] int port() const noexcept { return port_; }

  // Starts it and waits (bounded) until it answers PING. Throws if it cannot.
  void start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      spawn();
      const auto deadline = std::chrono::steady_clock::now() + 10s * time_scale();
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port is busy
          pid_ = -1;
          break;
        }
        raw_client probe(port_, password());
        const std::string pong = probe.command({"PING"});
        if (pong == "PONG" || pong.rfind("ERR:NOAUTH", 0) == 0) return;
        std::this_thread::sleep_for(5ms);
      }
      kill_hard();
    }
    throw std::runtime_error("could not start a private redis-server on port " +
                             std::to_string(port_));
  }

  void kill_hard() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string password() const {
    for (std::size_t i = 0; i + 1 < extra_.size(); ++i) {
      if (extra_[i] == "--requirepass") return extra_[i + 1];
    }
    return {};
  }

  void spawn() {
    std::vector<std::string> args{TANDEM_REDIS_SERVER_PATH,
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--daemonize",
                                  "no",
                                  "--loglevel",
                                  "warning"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int error = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw std::runtime_error("posix_spawn redis-server failed");
  }

  int port_;
  std::vector<std::string> extra_;
  ::pid_t pid_ = -1;
};

// An envelope made by hand (see "The envelope" in redis_bus.hpp), with every length
// overridable, for hostile input.
struct envelope_parts {
  unsigned char version = 1;
  std::string node = "foreign-node-made-by-hand";
  std::uint64_t sequence = 0;
  std::string topic = "readings";
  std::string payload;
  std::int64_t node_length = -1;     // -1: the real one
  std::int64_t topic_length = -1;    // -1: the real one
  std::int64_t payload_length = -1;  // -1: the real one
};

inline std::string make_envelope(const envelope_parts& parts) {
  auto le = [](std::string& out, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFU));
  };
  std::string out = "TB";
  out.push_back(static_cast<char>(parts.version));
  out.push_back(static_cast<char>(
      parts.node_length >= 0 ? parts.node_length : static_cast<std::int64_t>(parts.node.size())));
  out += parts.node;
  le(out, parts.sequence, 8);
  le(out,
     parts.topic_length >= 0 ? static_cast<std::uint64_t>(parts.topic_length) : parts.topic.size(),
     4);
  out += parts.topic;
  le(out,
     parts.payload_length >= 0 ? static_cast<std::uint64_t>(parts.payload_length)
                               : parts.payload.size(),
     4);
  out += parts.payload;
  return out;
}

}  // namespace tandem::test::redis
