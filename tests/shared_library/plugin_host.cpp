// A plugin host that uses no tandem itself (docs/building.md, "Shared libraries and plugins"):
// it loads two copies of the same tandem-using plugin (tandem_test_module_state in module.cpp,
// built with -fvisibility=hidden) with dlopen(RTLD_NOW | RTLD_GLOBAL), as the docs tell such a
// host to, and checks that both bind to one copy of tandem's process-wide state. With
// RTLD_LOCAL, clang-built plugins each keep their own (clang does not emit g++'s
// STB_GNU_UNIQUE symbols, which the dynamic linker merges even then).
// Usage: tandem_test_plugin_host <plugin 1> <plugin 2>; exit status 0 when the state is shared.
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <plugin 1> <plugin 2>\n", argv[0]);
    return 2;
  }
  constexpr int capacity = 16;
  const void* state[2][capacity] = {};
  int count[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    void* handle = ::dlopen(argv[i + 1], RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
      std::fprintf(stderr, "dlopen %s: %s\n", argv[i + 1], ::dlerror());
      return 2;
    }
    using entry = int (*)(const void**, int);
    auto* get = reinterpret_cast<entry>(::dlsym(handle, "tandem_test_module_state"));
    if (get == nullptr) {
      std::fprintf(stderr, "dlsym: %s\n", ::dlerror());
      return 2;
    }
    count[i] = get(state[i], capacity);
  }
  int differing = count[0] == count[1] && count[0] > 0 ? 0 : 1;
  for (int k = 0; k < count[0] && k < count[1]; ++k) {
    const bool same = state[0][k] == state[1][k];
    std::printf("state %d: %p %p%s\n", k, state[0][k], state[1][k], same ? "" : "  DIFFERENT");
    if (!same) ++differing;
  }
  std::printf("%s\n", differing == 0 ? "one process-wide state" : "the plugins' states differ");
  return differing == 0 ? 0 : 1;
}
