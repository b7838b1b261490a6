// Compiled with -std=c++17 by the "a pre-C++20 build says tandem needs C++20" hygiene tests:
// the first error must be tandem's own (detail/port.hpp), naming the fix.
#include <tandem/tandem.hpp>

int main() {
  return 0;
}
