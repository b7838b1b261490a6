// tests/support/counting_new.hpp -- replaces the global operator new/delete with versions that
// count the allocations made by the calling thread. Include it in exactly one translation unit
// of a test program (each tests/*_test.cpp is its own program).
//
//   tandem::test::allocation_scope scope;
//   ... code under test ...
//   CHECK(scope.count() == 0);   // nothing allocated on this thread since `scope` began
#pragma once

#include <cstddef>

namespace tandem::test {

inline thread_local std::size_t thread_allocations = 0;

class allocation_scope {
 public:
  allocation_scope() noexcept : start_(thread_allocations) {}
  [[nodiscard]] std::size_t count() const noexcept { return thread_allocations - start_; }

 private:
  std::size_t start_;
};

}  // namespace tandem::test

#include "replaced_new.hpp"

void* tandem::test::hooks::allocate(std::size_t size, std::size_t alignment) {
  ++thread_allocations;
  return system_allocate(size, alignment);
}

void tandem::test::hooks::deallocate(void* p) noexcept {
  std::free(p);
}
