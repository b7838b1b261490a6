// For the tests of two threads receiving on one subscription or inbox at once: an assertion
// handler that counts mailbox::receiving_check's TANDEM_ASSERT report of that overlap and lets
// the test go on (install it with tandem::set_assertion_handler, put the previous one back
// after). Any other failed assertion goes on to the default handler (std::abort): a handler that
// let every failure through would count a real fault as the expected report and swallow it.
#pragma once

#include <tandem/sync/assert.hpp>

#include <atomic>
#include <string_view>

namespace tandem::test {

inline std::atomic<int> two_receivers_reported{0};

inline void count_two_receivers(const tandem::assertion_info& info) {
  if (std::string_view(info.message).find("two threads receive") != std::string_view::npos) {
    ++two_receivers_reported;
    return;
  }
  tandem::detail::default_assertion_handler(info);
}

}  // namespace tandem::test
