// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: make_double_buffer|tandem::double_buffer|class template 'double_buffer'
// expect-concept: double_buffer_operation
// An Op that cannot be applied to T (it takes the wrong type).
#include <tandem/double_buffer.hpp>

#include <vector>

struct wrong_op {
  void operator()(int&) const {}
};

int main() {
  auto [writer, reader] = tandem::make_double_buffer<std::vector<int>, wrong_op>();
  (void)writer;
  (void)reader;
}
