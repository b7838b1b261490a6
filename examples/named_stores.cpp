// Named key-value stores shared across threads: the story of the "registry-based singleton"
// write-up that tandem::registry started from.
//
// A server keeps one store per namespace ("users", "sessions", ...). Every connection thread
// asks for the namespace it needs by name; the first request builds the store, every later one
// gets the same instance. The "sessions" store needs the "users" store to build itself -- with
// a single write-locked map that would deadlock; here the factory simply asks the registry.
//
// The output counts the constructions (one per name, however many threads ask) and shows the
// two failure paths a user meets: a throwing factory leaves no entry (a retry builds it) and a
// store that needs itself gets an exception naming the cycle instead of a deadlock.
#include <tandem/registry.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<int> stores_built{0};

// A tiny thread-safe key-value store. The registry shares instances; synchronising a store's
// own data is the store's job.
class key_value_store {
 public:
  explicit key_value_store(const std::string& name, std::shared_ptr<key_value_store> parent = {})
      : name_(name), parent_(std::move(parent)) {
    stores_built.fetch_add(1);
    std::printf("  [build] store \"%s\"%s\n", name_.c_str(),
                parent_ ? (" (depends on \"" + parent_->name() + "\")").c_str() : "");
  }
  ~key_value_store() { std::printf("  [drop]  store \"%s\"\n", name_.c_str()); }

  void put(const std::string& key, std::string value) {
    const std::lock_guard<std::mutex> lock(mutex_);
    data_[key] = std::move(value);
  }
  std::optional<std::string> get(const std::string& key) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    return it->second;
  }
  std::size_t size() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return data_.size();
  }
  const std::string& name() const { return name_; }
  const std::shared_ptr<key_value_store>& parent() const { return parent_; }

 private:
  std::string name_;
  std::shared_ptr<key_value_store> parent_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> data_;
};

using stores = tandem::registry<key_value_store>;

// "sessions" is built from "users": its factory asks the same registry for another name.
std::shared_ptr<key_value_store> open_store(stores& registry, const std::string& name) {
  if (name == "sessions") {
    return registry.get_or_create_with(name, [&] {
      return std::make_unique<key_value_store>("sessions", registry.get_or_create("users"));
    });
  }
  return registry.get_or_create(name);  // builds key_value_store(name)
}

}  // namespace

int main() {
  stores registry;

  std::puts(
      "What this shows: tandem::registry builds each named store once, on first use, however\n"
      "many threads ask, and a store's factory may ask for another name without deadlocking.\n"
      "Why it matters: no start-up order to maintain and no store built twice by a race.");

  constexpr int threads = 4;
  std::printf(
      "%d connection threads each open \"sessions\" (built from \"users\"), then \"users\":\n",
      threads);
  std::vector<std::thread> connections;
  for (int id = 0; id < threads; ++id) {
    connections.emplace_back([&registry, id] {
      auto sessions = open_store(registry, "sessions");
      auto users = open_store(registry, "users");
      users->put("user-" + std::to_string(id), "connection " + std::to_string(id));
      sessions->put("session-" + std::to_string(id), "user-" + std::to_string(id));
    });
  }
  for (auto& t : connections) t.join();

  // Every thread got the same instances: each store was built exactly once.
  auto users = registry.find("users");
  auto sessions = registry.find("sessions");
  std::printf("  -> %d stores built for %d requests; all threads wrote to the same instances:\n",
              stores_built.load(), 2 * threads);
  std::printf("  users: %zu entries, sessions: %zu entries, sessions' parent is users: %s\n",
              users->size(), sessions->size(), sessions->parent() == users ? "yes" : "no");

  // A read without copying a shared_ptr (the cheapest lookup).
  registry.visit("users", [](key_value_store& store) {
    std::printf("visit(\"users\") reads in place, no shared_ptr copy: users[\"user-2\"] = %s\n",
                store.get("user-2").value_or("?").c_str());
  });

  // A store whose constructor throws leaves nothing behind, and a later call can retry.
  try {
    (void)registry.get_or_create_with("flaky", []() -> std::unique_ptr<key_value_store> {
      throw std::runtime_error("disk not mounted yet");
    });
  } catch (const std::exception& error) {
    std::printf("building \"flaky\" failed (%s); contains(\"flaky\") = %s\n", error.what(),
                registry.contains("flaky") ? "true" : "false");
  }
  std::puts("  -> a failed build leaves no entry and poisons nothing, so the next call retries:");
  (void)registry.get_or_create("flaky");

  // A store that needs itself is reported instead of deadlocking.
  try {
    (void)registry.get_or_create_with("loop", [&] {
      return std::make_unique<key_value_store>("loop", registry.get_or_create("loop"));
    });
  } catch (const tandem::recursive_creation_error& error) {
    std::printf("a store that needs itself gets an exception, not a deadlock:\n  %s\n",
                error.what());
  }

  std::puts("stores in creation order:");
  registry.for_each([](const std::string& name, key_value_store& store) {
    std::printf("  %s (%zu entries)\n", name.c_str(), store.size());
  });

  // Process-wide named singletons work the same way.
  std::puts("named_singleton<key_value_store>(\"audit\") uses the process-wide registry:");
  auto audit = tandem::named_singleton<key_value_store>("audit");
  audit->put("started", "yes");

  users.reset();
  sessions.reset();
  std::puts(
      "the registry releases its stores in reverse creation order, so \"sessions\" goes before\n"
      "the \"users\" store it was built from:");
  registry.clear();
  std::puts("(the global \"audit\" store is released at process exit)");
  return 0;
}
