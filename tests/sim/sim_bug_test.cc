// Shows that the simulation's checks bite. This binary links a copy of the Raft core built
// with MICEDB_RAFT_BUG_COMMIT_OLD_TERM, which lets a leader commit entries of earlier terms by
// counting replicas — the mistake the paper's Figure 8 warns about. Running the same seeds as
// sim_test, the simulation must report a violation; the test fails if it never does.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "tests/sim/sim_seeds.h"
#include "tests/sim/simulation.h"

namespace micedb::sim {
namespace {

TEST(SimBugTest, CommittingOldTermEntriesByCountingIsCaught) {
  const uint64_t seeds = kCasesPerSize * kSeedsPerCase;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    for (int nodes : {3, 5}) {
      SimOptions o;
      o.seed = seed;
      o.nodes = nodes;
      o.steps = kStepsPerSeed;
      SimResult r = RunSimulation(o);
      if (r.ok()) continue;
      fmt::print("caught after {} runs (replay it with raft_sim_buggy, not raft_sim):\n{}",
                 2 * seed - (nodes == 3 ? 1 : 0), r.FailureReport());
      const std::string& check = r.violations.front().check;
      EXPECT_TRUE(check == "leader-completeness" || check == "committed-entry-changed" ||
                  check == "state-machine-safety" || check == "read-linearizability" ||
                  check == "log-matching")
          << "unexpected kind of violation: " << check;
      return;
    }
  }
  FAIL() << "no violation in " << 2 * seeds << " runs of a core that commits old-term entries";
}

}  // namespace
}  // namespace micedb::sim
