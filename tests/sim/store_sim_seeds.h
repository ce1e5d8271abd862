// The seeds `make test` runs through the store simulation, shared by store_sim_test (the real
// store must pass them all) and store_sim_bug_test (the broken store must fail one of them).
#pragma once

#include <cstdint>

#include "tests/sim/store_sim.h"

namespace micedb::sim {

// kStoreSimCases ctest cases of kStoreSimSeedsPerCase consecutive seeds each (odd seeds with 3
// nodes, even seeds with 5, every fourth with --meta-transfers, half with --splits (half of those
// with --merges), a third with --idle), each run with kStoreSimFaultMs virtual ms of faults and
// load.
inline constexpr uint64_t kStoreSimSeedsPerCase = 50;
inline constexpr int kStoreSimCases = 4;
inline constexpr int64_t kStoreSimFaultMs = 6000;

inline StoreSimOptions StoreSimSeedOptions(uint64_t seed) {
  StoreSimOptions o;
  o.seed = seed;
  o.nodes = seed % 2 == 1 ? 3 : 5;
  o.fault_ms = kStoreSimFaultMs;
  // Every fourth seed's leader transfers also move the coordinator's leadership.
  o.meta_transfers = seed % 4 == 0;
  // Half the seeds, three and five nodes alike, split regions as they go.
  o.splits = seed % 4 == 1 || seed % 4 == 2;
  // Half of those merge regions too.
  o.merges = seed % 8 == 1 || seed % 8 == 2;
  // A third of them with quiet phases, in which regions hibernate under the nemesis.
  o.idle = seed % 3 == 0;
  return o;
}

}  // namespace micedb::sim
