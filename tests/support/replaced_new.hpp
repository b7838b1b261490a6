// tests/support/replaced_new.hpp -- the global operator new/delete of a test program, all
// forms, in terms of two functions the including header or test (counting_new.hpp,
// failing_new.hpp, rc_map_exit_test.cpp) defines after including this one:
// tandem::test::hooks::allocate(size, alignment), which returns memory from
// system_allocate (malloc/aligned_alloc) or throws std::bad_alloc, and
// tandem::test::hooks::deallocate(p), which gives it back with std::free.
// Include it, through one of those headers, in exactly one translation unit of a program.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace tandem::test::hooks {

void* allocate(std::size_t size, std::size_t alignment);
void deallocate(void* p) noexcept;

// Plain malloc for the usual alignment, aligned_alloc (size rounded up) beyond it.
inline void* system_allocate(std::size_t size, std::size_t alignment) {
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

inline void* allocate_or_null(std::size_t size, std::size_t alignment) noexcept {
  try {
    return allocate(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace tandem::test::hooks

// GCC 12 at -O1 and above pairs the std::free in deallocate with the operator new it inlined and
// reports -Wmismatched-new-delete, a false positive: every allocation here comes from malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// NOLINTBEGIN(misc-new-delete-overloads)
void* operator new(std::size_t size) {
  return tandem::test::hooks::allocate(size, alignof(std::max_align_t));
}
void* operator new[](std::size_t size) {
  return tandem::test::hooks::allocate(size, alignof(std::max_align_t));
}
void* operator new(std::size_t size, std::align_val_t align) {
  return tandem::test::hooks::allocate(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return tandem::test::hooks::allocate(size, static_cast<std::size_t>(align));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return tandem::test::hooks::allocate_or_null(size, alignof(std::max_align_t));
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return tandem::test::hooks::allocate_or_null(size, alignof(std::max_align_t));
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return tandem::test::hooks::allocate_or_null(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return tandem::test::hooks::allocate_or_null(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete[](void* p) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete(void* p, std::size_t) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  tandem::test::hooks::deallocate(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  tandem::test::hooks::deallocate(p);
}
// NOLINTEND(misc-new-delete-overloads)
