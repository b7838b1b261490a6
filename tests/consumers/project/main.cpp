// The consumer program: it must compile against the umbrella header and run, using each
// component once.
#include <tandem/tandem.hpp>

#include <cstdio>
#include <string>

int main() {
  auto greeting = tandem::named_singleton<std::string>("greeting");
  *greeting = "tandem";

  auto [writer, reader] = tandem::make_double_buffer_map<int, int>();
  writer.insert(1, TANDEM_VERSION_MAJOR + 1);
  writer.publish();

  tandem::rc_map<std::string, int> counts;
  auto [handle, inserted] = counts.insert("one", 1);

  tandem::event_bus<int> bus;
  auto subscription = bus.subscribe("news");
  const std::size_t reached = bus.publish("news", 42);

  const bool ok = reader.get(1) == TANDEM_VERSION_MAJOR + 1 && inserted && *handle == 1 &&
                  reached == 1 && subscription.try_receive() == 42 &&
                  *tandem::named_singleton<std::string>("greeting") == "tandem";
  std::printf("tandem %d.%d.%d consumed: %s\n", tandem::version.major, tandem::version.minor,
              tandem::version.patch, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
