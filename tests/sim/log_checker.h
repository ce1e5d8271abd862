// LogChecker: the log properties of the Raft paper (Figure 3), checked incrementally as logs
// change rather than by comparing whole logs after every event.
//
//  - Log matching: two logs holding an entry with the same index and term are identical up to
//    that index. Every (index, term) ever appended anywhere must always carry the same content
//    and follow the same previous term; by induction over the AppendEntries consistency check
//    (§5.3) that is the whole property. (The cluster also compares whole logs now and then.)
//  - Committed entries never change: once some node's commit index covers index i holding term
//    t, every node whose commit index covers i holds term t there, and none overwrites it.
//  - Leader completeness (§5.4): an entry that a node saw committed while in term c is in the
//    log of every leader of a term above c.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/strong_id.h"
#include "tests/sim/violation.h"

namespace micedb::sim {

class LogChecker {
 public:
  // Violations are appended to *out, which must outlive the checker.
  explicit LogChecker(Violations* out) : out_(out) {}

  // `node` appended the entry (index, term) with content hash `content`, right after an entry
  // of term `prev_term` (the snapshot's term when it follows a snapshot).
  void ObserveAppend(NodeId node, LogIndex index, Term term, Term prev_term, uint64_t content);

  // `node`, currently in term `observer_term`, has a commit index covering `index`, where its
  // log (or snapshot) holds term `term`.
  void ObserveCommitted(NodeId node, LogIndex index, Term term, Term observer_term);

  // `node` is about to replace its entry at `index` (term old_term) by one of term new_term,
  // while its own commit index `commit` covers that index.
  void ObserveOverwrite(NodeId node, LogIndex index, Term old_term, Term new_term, LogIndex commit);

  // Term of the leader's entry at an index in [first, last]; nullopt if it cannot tell.
  using TermLookup = std::function<std::optional<Term>(LogIndex)>;
  // `leader` leads `term`; its log holds [first, last] (what is below first is covered by its
  // snapshot). Checks that it holds every entry committed in an earlier term.
  void CheckLeaderLog(NodeId leader, Term term, LogIndex first, LogIndex last,
                      const TermLookup& term_at);

  // Term of the committed entry at `index`, if some node has reported it.
  std::optional<Term> CommittedTerm(LogIndex index) const;

 private:
  struct Key {
    uint64_t index;
    uint64_t term;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Seen {
    Term prev_term;
    uint64_t content;
    NodeId first_holder;
  };
  struct Committed {
    Term term;         // 0: not reported yet
    Term commit_term;  // lowest observer term that reported it
  };

  Violations* out_;
  std::unordered_map<Key, Seen, KeyHash> seen_;
  std::vector<Committed> committed_;  // committed_[i - 1] is about index i
};

}  // namespace micedb::sim
