#include "cli/fd_limits.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

namespace micedb::cli {
namespace {

TEST(FdLimits, TheSoftLimitRisesToWhatTheClientsAndTheReserveNeed) {
  const size_t reserved = ReservedDescriptors(1024);
  auto plan = PlanDescriptors(1024, 1 << 20, 10000, 1024);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->soft_limit, 10000 + reserved);
  EXPECT_EQ(plan->max_connections, 10000u);
  EXPECT_TRUE(plan->warning.empty());
  // Never lowered.
  plan = PlanDescriptors(1 << 20, 1 << 20, 100, 1024);
  EXPECT_EQ(plan->soft_limit, 1u << 20);
}

TEST(FdLimits, AShortHardLimitLowersTheConnectionLimitWithAWarning) {
  const size_t reserved = ReservedDescriptors(1024);
  auto plan = PlanDescriptors(1024, 4096, 10000, 1024);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->soft_limit, 4096u);
  EXPECT_EQ(plan->max_connections, 4096 - reserved);
  EXPECT_EQ(plan->rocksdb_files, 1024);
  EXPECT_NE(plan->warning.find("--max-connections 10000 lowered to"), std::string::npos)
      << plan->warning;
}

TEST(FdLimits, AVeryShortLimitAlsoLowersRocksDbsOpenFiles) {
  auto plan = PlanDescriptors(1024, 1024, 10000, 1024);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->soft_limit, 1024u);
  EXPECT_EQ(plan->rocksdb_files, 512);
  EXPECT_EQ(plan->max_connections, 1024 - ReservedDescriptors(512));
  EXPECT_NE(plan->warning.find("RocksDB keeps 512"), std::string::npos) << plan->warning;
}

TEST(FdLimits, ALimitThatLeavesTooFewClientsIsRefused) {
  auto plan = PlanDescriptors(256, 256, 10000, 1024);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("ulimit -Hn"), std::string::npos);
}

TEST(FdLimits, RaisingThisProcessesLimitSetsIt) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  auto plan = RaiseDescriptorLimit(100, 64);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= ReservedDescriptors(64)) {
    EXPECT_FALSE(plan.ok());
    return;
  }
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, plan->soft_limit);
  EXPECT_GE(now.rlim_cur, rl.rlim_cur);
}

}  // namespace
}  // namespace micedb::cli
