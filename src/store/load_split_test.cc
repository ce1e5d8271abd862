// LoadSplitKey: where a hot region's sampled load divides in two.
#include "store/load_split.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace micedb::store {
namespace {

std::vector<std::string> Keys(int from, int to, int each = 1) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) {
    for (int j = 0; j < each; ++j) out.push_back(fmt::format("rk{:04}", i));
  }
  return out;
}

TEST(LoadSplitKeyTest, EvenLoadSplitsInTheMiddle) {
  auto key = LoadSplitKey(Keys(0, 100), "r", "");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, "rk0050");
}

TEST(LoadSplitKeyTest, TheSplitHalvesTheLoadNotTheKeys) {
  // Keys 0-9 take ten times the requests of keys 10-99: half the load lies below key 5.
  auto samples = Keys(0, 10, 10);
  auto rest = Keys(10, 100);
  samples.insert(samples.end(), rest.begin(), rest.end());
  auto key = LoadSplitKey(samples, "r", "");
  ASSERT_TRUE(key.has_value());
  EXPECT_GE(*key, "rk0006");
  EXPECT_LE(*key, "rk0009");
}

TEST(LoadSplitKeyTest, OneHotKeyIsNotSplit) {
  auto samples = Keys(7, 8, 200);  // all on one key
  auto few = Keys(0, 10);
  samples.insert(samples.end(), few.begin(), few.end());
  EXPECT_FALSE(LoadSplitKey(samples, "r", "").has_value());
}

TEST(LoadSplitKeyTest, TheKeyLiesStrictlyInsideTheRegion) {
  // Samples at the region's start key cannot split there; the next best is used.
  auto samples = Keys(0, 1, 40);
  auto rest = Keys(1, 101);
  samples.insert(samples.end(), rest.begin(), rest.end());
  auto key = LoadSplitKey(samples, "rk0000", "rk0101");
  ASSERT_TRUE(key.has_value());
  EXPECT_GT(*key, "rk0000");
  EXPECT_LT(*key, "rk0101");
  // Everything at or past the end (stale samples from before a split): nothing to split at.
  EXPECT_FALSE(LoadSplitKey(Keys(200, 300), "r", "rk0150").has_value());
}

TEST(LoadSplitKeyTest, TooFewSamplesDecideNothing) {
  EXPECT_FALSE(LoadSplitKey(Keys(0, 20), "r", "").has_value());
  EXPECT_TRUE(LoadSplitKey(Keys(0, 20), "r", "", 16).has_value());
}

}  // namespace
}  // namespace micedb::store
