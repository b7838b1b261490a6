// tests/redis/redis_server.hpp -- a private redis-server process on a free loopback port, and a
// plain hiredis client, for tandem's Redis tests and benchmark (POSIX). No test framework:
// bench/redis_bus_bench.cpp uses it too. Needs TANDEM_REDIS_SERVER_PATH (set by CMake).
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
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>

extern char** environ;

namespace tandem::test::redis {

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

  // Starts it and waits (at most `limit` per attempt, 5 attempts) until it answers PING.
  // Throws if it cannot.
  void start(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      spawn();
      const auto deadline = std::chrono::steady_clock::now() + limit;
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: the port is busy
          pid_ = -1;
          break;
        }
        raw_client probe(port_, password());
        const std::string pong = probe.command({"PING"});
        if (pong == "PONG" || pong.rfind("ERR:NOAUTH", 0) == 0) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      kill_hard();
    }
    throw std::runtime_error("could not start a private redis-server on port " +
                             std::to_string(port_));
  }

  // SIGSTOP / SIGCONT: a server that keeps its connections open and answers nothing (frozen,
  // overloaded), then carries on.
  void pause() noexcept {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() noexcept {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
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

}  // namespace tandem::test::redis
