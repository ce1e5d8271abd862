// ElectionChecker: election safety (Raft paper Figure 3) — at most one leader per term, over
// the whole history of a run, including leaders that have since crashed or stepped down.
#pragma once

#include <map>
#include <set>

#include "common/strong_id.h"
#include "tests/sim/violation.h"

namespace micedb::sim {

class ElectionChecker {
 public:
  // Violations are appended to *out, which must outlive the checker.
  explicit ElectionChecker(Violations* out) : out_(out) {}

  // `node` believes it is the leader of `term`. Call it whenever that may have become true
  // (the simulation calls it after every event that touched a node).
  void ObserveLeader(NodeId node, Term term);

  // Number of distinct terms that have had a leader.
  size_t terms_with_leader() const { return leader_of_.size(); }

 private:
  Violations* out_;
  std::map<Term, NodeId> leader_of_;
  std::set<Term> reported_;  // terms already reported, so each is reported once
};

}  // namespace micedb::sim
