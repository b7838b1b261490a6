// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: event_bus
// expect-concept: works_default_constructed
// A std::function as Hash with no hash passed: the bus would build Hash(), an empty
// std::function, and throw std::bad_function_call on every publish (until 2026-12-02 this
// compiled). Passing the function, event_bus(options, hash), is the way to use one.
#include <tandem/event_bus.hpp>

#include <cstddef>
#include <functional>
#include <string>

int main() {
  tandem::event_bus<int, std::string, std::function<std::size_t(const std::string&)>> bus;
  (void)bus;
}
