// tests/support/counting_new.hpp -- replaces the global operator new/delete with versions that
// count the allocations made by the calling thread. Include it in exactly one translation unit
// of a test program (each tests/*_test.cpp is its own program).
//
//   tandem::test::allocation_scope scope;
//   ... code under test ...
//   CHECK(scope.count() == 0);   // nothing allocated on this thread since `scope` began
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace tandem::test {

inline thread_local std::size_t thread_allocations = 0;

class allocation_scope {
 public:
  allocation_scope() noexcept : start_(thread_allocations) {}
  [[nodiscard]] std::size_t count() const noexcept { return thread_allocations - start_; }

 private:
  std::size_t start_;
};

namespace detail {
inline void* counted_alloc(std::size_t size, std::size_t alignment) noexcept {
  ++thread_allocations;
  if (size == 0) size = 1;
  if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
  // aligned_alloc needs size to be a multiple of the alignment.
  const std::size_t rounded = (size + alignment - 1) / alignment * alignment;
  return std::aligned_alloc(alignment, rounded);
}
inline void* counted_alloc_or_throw(std::size_t size, std::size_t alignment) {
  void* p = counted_alloc(size, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace detail
}  // namespace tandem::test

// GCC 12 at -O1 and above pairs the std::free below with the operator new it inlined and
// reports -Wmismatched-new-delete, a false positive: every allocation here comes from malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// NOLINTBEGIN(misc-new-delete-overloads)
void* operator new(std::size_t size) {
  return tandem::test::detail::counted_alloc_or_throw(size, alignof(std::max_align_t));
}
void* operator new[](std::size_t size) {
  return tandem::test::detail::counted_alloc_or_throw(size, alignof(std::max_align_t));
}
void* operator new(std::size_t size, std::align_val_t align) {
  return tandem::test::detail::counted_alloc_or_throw(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return tandem::test::detail::counted_alloc_or_throw(size, static_cast<std::size_t>(align));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return tandem::test::detail::counted_alloc(size, alignof(std::max_align_t));
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return tandem::test::detail::counted_alloc(size, alignof(std::max_align_t));
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return tandem::test::detail::counted_alloc(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return tandem::test::detail::counted_alloc(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
// NOLINTEND(misc-new-delete-overloads)
