// The seeded simulation of the real Raft core: kCasesPerSize * kSeedsPerCase seeds each for
// 3 and 5 nodes, one ctest case per block of seeds so ctest can run them in parallel. A failure
// prints the seed, the command that replays it, the violation and the events before it.
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <vector>

#include <fmt/format.h>

#include "tests/sim/sim_seeds.h"
#include "tests/sim/simulation.h"

namespace micedb::sim {
namespace {

struct Block {
  int nodes;
  int index;  // which block of kSeedsPerCase seeds
};

void PrintTo(const Block& b, std::ostream* os) { *os << b.nodes << " nodes, block " << b.index; }

class SimSeedsTest : public testing::TestWithParam<Block> {};

TEST_P(SimSeedsTest, AllChecksHold) {
  const Block b = GetParam();
  const uint64_t first = 1 + static_cast<uint64_t>(b.index) * kSeedsPerCase;
  uint64_t events = 0, applied = 0, terms = 0, reads = 0, snapshots = 0, conf = 0;
  int64_t worst_recovery = 0;
  for (uint64_t seed = first; seed < first + kSeedsPerCase; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.nodes = b.nodes;
    o.steps = kStepsPerSeed;
    SimResult r = RunSimulation(o);
    ASSERT_TRUE(r.ok()) << r.FailureReport();
    events += r.stats.events;
    applied += r.stats.committed;
    terms += r.stats.leader_terms;
    reads += r.stats.reads_served;
    snapshots += r.stats.snapshots_installed;
    conf += r.stats.conf_changes_applied;
    worst_recovery = std::max(worst_recovery, r.stats.liveness_time);
  }
  fmt::print(
      "seeds {}..{} ({} nodes): {} events, {} leader terms, {} entries applied, {} reads "
      "served, {} snapshots installed, {} conf changes applied, slowest recovery {} "
      "time units\n",
      first, first + kSeedsPerCase - 1, b.nodes, events, terms, applied, reads, snapshots, conf,
      worst_recovery);
}

// The read check bites in a whole run, not only on hand-made histories: reads served from a
// node's local state without ReadIndex must be caught as stale.
TEST(SimSelfTest, LocalReadsWithoutReadIndexAreCaught) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.nodes = seed % 2 == 1 ? 3 : 5;
    o.steps = kStepsPerSeed;
    o.unsafe_local_reads = true;
    SimResult r = RunSimulation(o);
    if (r.ok()) continue;
    EXPECT_EQ(r.violations.front().check, "read-linearizability") << r.FailureReport();
    return;
  }
  FAIL() << "stale local reads were never caught";
}

std::vector<Block> Blocks() {
  std::vector<Block> out;
  for (int nodes : {3, 5}) {
    for (int i = 0; i < kCasesPerSize; ++i) out.push_back({nodes, i});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimSeedsTest, testing::ValuesIn(Blocks()),
                         [](const testing::TestParamInfo<Block>& info) {
                           uint64_t first = 1 + info.param.index * kSeedsPerCase;
                           return fmt::format("Nodes{}_Seeds{}to{}", info.param.nodes, first,
                                              first + kSeedsPerCase - 1);
                         });

}  // namespace
}  // namespace micedb::sim
