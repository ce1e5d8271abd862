// ProgressTracker: the membership (voters and learners), the leader's per-member progress,
// and the votes of an election. Quorums are majorities of voters; learners never count
// (thesis §4.2.1).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "common/strong_id.h"
#include "micedb/raft.pb.h"
#include "raft/progress.h"

namespace micedb::raft {

enum class VoteResult { kPending, kWon, kLost };

// The value that a majority of `values` is at or above (the (n/2+1)-th largest). 0 if empty.
uint64_t QuorumValue(std::vector<uint64_t> values);

class ProgressTracker {
 public:
  ProgressTracker(size_t max_inflight, uint64_t max_inflight_bytes)
      : max_inflight_(max_inflight), max_inflight_bytes_(max_inflight_bytes) {}

  // Membership.
  void SetConfState(const ConfState& cs);
  ConfState GetConfState() const;
  bool IsVoter(NodeId id) const;
  bool IsLearner(NodeId id) const;
  bool IsMember(NodeId id) const { return IsVoter(id) || IsLearner(id); }
  const std::vector<NodeId>& voters() const { return voters_; }
  const std::vector<NodeId>& learners() const { return learners_; }
  // The change returns whether it changed anything.
  bool AddVoter(NodeId id);
  bool AddLearner(NodeId id);
  bool Remove(NodeId id);

  // Progress (leader only). Reset gives every member a fresh probe starting at `next`, not yet
  // recently active.
  void ResetProgress(LogIndex next);
  // Creates the progress of a member that has none (after a conf change), and drops progress
  // of non-members. A new member counts as recently active: it has had no chance to answer,
  // and must not make CheckQuorum depose the leader that just added it.
  void SyncProgress(LogIndex next) { Sync(next, /*new_members_active=*/true); }
  FollowerProgress* Get(NodeId id);
  const FollowerProgress* Get(NodeId id) const;
  std::map<NodeId, FollowerProgress>& progress() { return progress_; }
  const std::map<NodeId, FollowerProgress>& progress() const { return progress_; }

  // The highest index replicated on a majority of voters.
  LogIndex CommittedIndex() const;
  // Applies `value` to each voter's progress and returns the quorum value of the results.
  uint64_t QuorumOf(const std::function<uint64_t(NodeId, const FollowerProgress&)>& value) const;
  // Whether a majority of voters were recently active (self counts as active).
  bool QuorumActive(NodeId self) const;

  // Elections.
  void ResetVotes() { votes_.clear(); }
  void RecordVote(NodeId id, bool granted);
  VoteResult TallyVotes(size_t* granted = nullptr, size_t* rejected = nullptr) const;

 private:
  void Sync(LogIndex next, bool new_members_active);

  size_t max_inflight_;
  uint64_t max_inflight_bytes_;
  std::vector<NodeId> voters_;    // sorted
  std::vector<NodeId> learners_;  // sorted
  std::map<NodeId, FollowerProgress> progress_;
  std::map<NodeId, bool> votes_;
};

}  // namespace micedb::raft
