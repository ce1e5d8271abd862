// Shows that the store simulation's checks bite. This binary links a copy of the store built
// with MICEDB_STORE_BUG_READ_BEFORE_APPLY: a ReadIndex (or lease) read is served as soon as its
// read index is known, without waiting for this replica to apply up to it, so a follower that
// lags answers from stale state. Running the seeds store_sim_test runs, the simulation must
// report a violation; the test fails if it never does.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "tests/sim/store_sim.h"
#include "tests/sim/store_sim_seeds.h"

namespace micedb::sim {
namespace {

TEST(StoreSimBugTest, ServingReadsBeforeTheirIndexIsAppliedIsCaught) {
  const uint64_t seeds = kStoreSimCases * kStoreSimSeedsPerCase;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    StoreSimOptions o = StoreSimSeedOptions(seed);
    o.binary = "store_sim_buggy";
    StoreSimResult r = RunStoreSimulation(o);
    if (r.ok()) continue;
    fmt::print("caught at seed {} (replay it with store_sim_buggy, not store_sim):\n{}", seed,
               r.FailureReport());
    const std::string& check = r.violations.front().check;
    EXPECT_TRUE(check == "read-linearizability" || check == "linearizability")
        << "unexpected kind of violation: " << check;
    return;
  }
  FAIL() << "no violation in " << seeds << " runs of a store that serves reads before applying";
}

}  // namespace
}  // namespace micedb::sim
