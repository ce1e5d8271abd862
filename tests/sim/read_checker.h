// ReadChecker: linearizable reads. A read must return a state that includes every write
// acknowledged before the read was invoked. A write is acknowledged when the client that
// proposed it learns that its entry (term, index) was applied on the node it proposed to.
// Because applied sequences are prefixes of one common sequence (ApplyChecker), "includes every
// acknowledged write" is "was served from a state that has applied at least the highest
// acknowledged index at invocation".
#pragma once

#include <cstdint>
#include <map>

#include "common/strong_id.h"
#include "tests/sim/violation.h"

namespace micedb::sim {

class ReadChecker {
 public:
  // Violations are appended to *out, which must outlive the checker.
  explicit ReadChecker(Violations* out) : out_(out) {}

  // A client was told that its write at `index` is applied.
  void ObserveAck(LogIndex index);

  // A client invokes a read now; returns the read's id.
  uint64_t BeginRead();

  // Read `id` was served by `node` from a state machine that had applied `applied`, for a read
  // point (ReadState index) of `read_index`. Ends the read.
  void ObserveServed(uint64_t id, NodeId node, LogIndex read_index, LogIndex applied);
  // Read `id` failed (dropped, or its node crashed). Ends the read.
  void ObserveFailed(uint64_t id) { pending_.erase(id); }

  LogIndex max_acked() const { return max_acked_; }
  uint64_t served() const { return served_; }
  size_t pending() const { return pending_.size(); }

 private:
  Violations* out_;
  LogIndex max_acked_;
  uint64_t next_id_ = 1;
  uint64_t served_ = 0;
  std::map<uint64_t, LogIndex> pending_;  // read id -> highest acknowledged index at invocation
};

}  // namespace micedb::sim
