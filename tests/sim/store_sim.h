// The store simulation (docs/simulation.md §6): the real store::Store, router::Router and
// kv::RegionStateMachine on several nodes in one process, over power-loss engines and a
// simulated network, under faults drawn from a seed; clients write and read a few registers
// through the routers and every answer is checked for linearizability; callers on every node
// ask the coordinator for timestamps and ids, which must be unique and in order; after the
// faults stop the cluster must make progress and every replica must hold the same data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/sim/violation.h"

namespace micedb::sim {

struct StoreSimOptions {
  uint64_t seed = 1;
  int nodes = 3;                      // 3 or 5
  int64_t fault_ms = 6000;            // virtual milliseconds of faults and client load
  int64_t liveness_bound_ms = 15000;  // after healing: a write must succeed within this
  int64_t converge_bound_ms = 15000;  // then: every replica must apply the same index
  std::string profile;                // force a fault mix (default: drawn from the seed)
  // Routers serve every read from their node's local state (RouterOptions::unsafe_local_reads):
  // deliberately broken, to show the checks catch stale reads.
  bool unsafe_local_reads = false;
  // Clock faults (per-node clock rates within +-8%, nodes paused and resumed): -1 drawn from
  // the seed (one run in two), 0 off, 1 on.
  int clock_faults = -1;
  // The nemesis's leader transfers also move the meta region's leadership (one in three). Off by
  // default: a transfer whose MSG_TIMEOUT_NOW is lost leaves the leader without a lease for the
  // rest of its term, and the coordinator without timestamps (docs/simulation.md §6, Findings).
  bool meta_transfers = false;
  // A nemesis splits regions at random keys (docs/sharding.md §1): every replica must apply
  // each split at the same index, no store may hold overlapping regions, and the regions must
  // tile the keyspace at the end. Draws from its own stream: runs without it stay as they were.
  bool splits = false;
  // A nemesis freezes random regions for a merge into a neighbour with the same members, and
  // each frozen region's leader drives its merge as a node does (store::NextMergeStep): the
  // same checks as for splits hold, with every merge committed or rolled back by the end.
  // Draws from its own stream.
  bool merges = false;
  // Clients go quiet for 0.3-1.5 s at a time, long enough for the regions to hibernate
  // (StoreOptions::hibernate) while the nemesis goes on: sleeping regions must wake to every
  // fault (a follower whose leader's store dies or is cut off elects another). Draws from its
  // own stream.
  bool idle = false;
  bool verbose = false;              // print every event
  std::string binary = "store_sim";  // named in the rerun command
};

struct StoreSimStats {
  uint64_t events = 0;
  uint64_t writes_acked = 0;
  uint64_t writes_failed = 0;  // outcome unknown to the client (timed out, node crashed, ...)
  // Writes the router reported Unavailable ("nothing applied", kv/backend.h) that a read later
  // returned: the router's contract broken (reported, not a violation).
  uint64_t unavailable_applied = 0;
  uint64_t reads_ok = 0;
  uint64_t reads_failed = 0;
  uint64_t crashes = 0;
  uint64_t transfers = 0;
  uint64_t freezes = 0;
  uint64_t conf_changes = 0;  // proposed
  uint64_t splits = 0;        // proposed
  uint64_t merges = 0;        // freezes proposed
  uint64_t merges_committed = 0;
  uint64_t merges_rolled_back = 0;
  uint64_t merges_refused = 0;  // RefuseMerge applied after the driver's timeout
  uint64_t regions = 0;         // data regions at the end
  uint64_t disk_fills = 0;      // a node's disk filled (the "disk" profile)
  uint64_t snapshots_applied = 0;
  int64_t liveness_ms = 0;      // from healing to the first successful write
  uint64_t tso_timestamps = 0;  // timestamp calls answered with one
  uint64_t tso_failed = 0;      // answered with an error
  uint64_t ids_allocated = 0;
  // Hibernation, summed over the stores alive before healing and at the end: replicas that
  // went to sleep, and followers woken because their leader's store fell silent.
  uint64_t sleeps = 0;
  uint64_t silent_leader_wakes = 0;
};

struct StoreSimResult {
  StoreSimOptions options;
  std::string profile;  // the fault mix and knobs, one line
  Violations violations;
  uint64_t trace_hash = 0;
  StoreSimStats stats;
  std::vector<std::string> tail;  // the last traced lines before the end or first violation

  bool ok() const { return violations.empty(); }
  std::string RerunCommand() const;
  // The seed, the first violations, the profile, the trace tail and the rerun command.
  std::string FailureReport() const;
};

// Runs one seed. Deterministic: the same options give the same result and trace hash.
StoreSimResult RunStoreSimulation(const StoreSimOptions& options);

}  // namespace micedb::sim
