#include "common/pulse.h"

#include <gtest/gtest.h>

#include <thread>

namespace micedb {
namespace {

TEST(PulseTest, RunsTheInstalledPulseOnItsThreadOnly) {
  Pulse();  // nothing installed: nothing happens
  int outer = 0;
  int inner = 0;
  {
    ScopedPulse a([&] { ++outer; });
    Pulse();
    {
      ScopedPulse b([&] { ++inner; });
      Pulse();
      Pulse();
      std::thread([] { Pulse(); }).join();  // another thread has none
    }
    Pulse();  // the outer one is back
  }
  Pulse();
  EXPECT_EQ(outer, 2);
  EXPECT_EQ(inner, 2);
}

}  // namespace
}  // namespace micedb
