// The deterministic Raft simulation: the public face of tests/sim.
//
// RunSimulation runs N nodes of the real Raft core (src/raft) in one process, on a seeded
// event queue in virtual time, under a fault schedule drawn from the seed, and checks the
// Raft safety properties after every event and liveness once the faults stop. The same
// options always give the same run (same trace hash). See docs/simulation.md.
//
// Thread-safety: a run uses no global state, so different runs may go on different threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/sim/violation.h"

namespace micedb::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;          // 3 or 5
  uint64_t steps = 4000;  // events in the fault phase; then faults stop and liveness is checked
  // Virtual time allowed, after faults stop, to elect a leader and commit a new entry on every
  // member. Time units: a node ticks every 10; an election timeout is 10-20 ticks.
  int64_t liveness_bound = 5000;
  std::string profile;   // force this fault mix (FaultProfile names); empty: drawn from the seed
  bool verbose = false;  // print every event to stdout
  // Self-test of the read check: serve reads from the local state machine at once, without
  // ReadIndex (stale on a lagging node). The run must then report read-linearizability.
  bool unsafe_local_reads = false;
  size_t trace_tail = 40;  // events kept to print with a failure
};

struct SimStats {
  uint64_t events = 0;
  int64_t end_time = 0;
  int64_t liveness_time = 0;  // virtual time from the end of faults to liveness
  uint64_t leader_terms = 0;  // distinct terms that had a leader
  uint64_t messages = 0;
  uint64_t dropped = 0;
  uint64_t crashes = 0;
  uint64_t snapshots_installed = 0;
  uint64_t compactions = 0;
  uint64_t conf_changes_applied = 0;
  uint64_t proposals = 0;  // accepted by a leader
  uint64_t acked = 0;      // applied on their proposer with the proposed term
  uint64_t lost = 0;       // overwritten by another leader's entry
  uint64_t reads_served = 0;
  uint64_t committed = 0;  // length of the common applied sequence
};

struct SimResult {
  SimOptions options;
  std::string profile;  // FaultProfile::Describe()
  uint64_t trace_hash = 0;
  SimStats stats;
  Violations violations;           // empty when every check passed
  std::vector<std::string> trace;  // the last events before the end (options.trace_tail)

  bool ok() const { return violations.empty(); }
  // A command that replays this run, e.g. "raft_sim --seed 42 --nodes 5 --steps 4000".
  std::string RerunCommand() const;
  // A multi-line description of a failed run: seed, rerun command, profile, violations and
  // the trace tail.
  std::string FailureReport() const;
};

SimResult RunSimulation(const SimOptions& options);

}  // namespace micedb::sim
