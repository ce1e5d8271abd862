// Every failure prints a seed; this shows the seed is enough to replay the run exactly.
#include <gtest/gtest.h>

#include "tests/sim/simulation.h"

namespace micedb::sim {
namespace {

SimOptions Options(uint64_t seed, int nodes) {
  SimOptions o;
  o.seed = seed;
  o.nodes = nodes;
  o.steps = 1500;
  return o;
}

TEST(DeterminismTest, SameSeedSameTrace) {
  for (int nodes : {3, 5}) {
    SimResult a = RunSimulation(Options(7, nodes));
    SimResult b = RunSimulation(Options(7, nodes));
    EXPECT_EQ(a.trace_hash, b.trace_hash) << nodes << " nodes";
    EXPECT_EQ(a.stats.events, b.stats.events);
    EXPECT_EQ(a.stats.committed, b.stats.committed);
    EXPECT_EQ(a.trace, b.trace);
  }
}

TEST(DeterminismTest, DifferentSeedsDifferentTraces) {
  SimResult a = RunSimulation(Options(7, 3));
  SimResult b = RunSimulation(Options(8, 3));
  SimResult c = RunSimulation(Options(7, 5));
  EXPECT_NE(a.trace_hash, b.trace_hash);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

}  // namespace
}  // namespace micedb::sim
