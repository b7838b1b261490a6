// A planted lock-order inversion that ThreadSanitizer must report (docs/reliability.md rule 38):
// two rc_maps' visits nested in opposite orders, on two threads one after the other (so the
// program never deadlocks: TSan's detector reports the order, not a hang). Registered only in
// ThreadSanitizer builds; CTest passes it when the output says "lock-order-inversion". Without
// sync::small_mutex's __tsan_mutex_* annotations TSan sees only atomics and reports nothing.
#include <tandem/rc_map.hpp>

#include <cstdio>
#include <string>
#include <thread>

int main() {
  tandem::rc_map<std::string, std::string> a(1);
  tandem::rc_map<std::string, std::string> b(1);
  auto ha = a.get_or_insert_with("a-key", [] { return std::string("a-value"); });
  auto hb = b.get_or_insert_with("b-key", [] { return std::string("b-value"); });
  std::size_t seen = 0;
  std::thread first([&] {
    static_cast<void>(a.visit("a-key", [&](const std::string& x) {
      static_cast<void>(
          b.visit("b-key", [&](const std::string& y) { seen += x.size() + y.size(); }));
    }));
  });
  first.join();
  std::thread second([&] {
    static_cast<void>(b.visit("b-key", [&](const std::string& y) {
      static_cast<void>(
          a.visit("a-key", [&](const std::string& x) { seen += x.size() + y.size(); }));
    }));
  });
  second.join();
  std::printf("nested visits done (%zu); TSan must have reported the inversion above\n", seen);
  return 0;
}
