// ApplyChecker: state machine safety (Raft paper Figure 3). Every node applies entries in
// index order without gaps, and every node's applied sequence is a prefix of one common
// sequence. A state machine restored from a snapshot must equal the common sequence's state
// at the snapshot's index; states are compared by digest (see ChainDigest).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "common/strong_id.h"
#include "tests/sim/violation.h"

namespace micedb::sim {

class ApplyChecker {
 public:
  // Violations are appended to *out, which must outlive the checker.
  explicit ApplyChecker(Violations* out) : out_(out) {}

  // `node` applied the entry (index, term) with content hash `content`.
  void ObserveApply(NodeId node, LogIndex index, Term term, uint64_t content);

  // `node`'s state machine was replaced by one at `index` whose digest is `digest` (a snapshot
  // install, or a restart from the durable snapshot). Index 0 with digest 0 is the empty state.
  void ObserveRestore(NodeId node, LogIndex index, uint64_t digest);

  // Length of the common sequence: the highest index any node has applied.
  LogIndex length() const { return LogIndex(seq_.size()); }
  // Term of the common sequence's entry at index (1 <= index <= length()).
  Term TermAt(LogIndex index) const { return seq_[index.value() - 1].term; }
  // The index `node` has applied up to (0 if never seen).
  LogIndex applied(NodeId node) const;

 private:
  struct Applied {
    Term term;
    uint64_t content;
    uint64_t digest;  // chain digest of the sequence up to here
    NodeId first;     // node that applied it first
  };

  Violations* out_;
  std::vector<Applied> seq_;  // seq_[i - 1] is index i
  std::map<NodeId, LogIndex> applied_;
};

}  // namespace micedb::sim
