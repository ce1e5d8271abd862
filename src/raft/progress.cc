#include "raft/progress.h"

#include <algorithm>

namespace micedb::raft {

void FollowerProgress::BecomeProbe() {
  // Coming back from a snapshot, the follower holds at least the snapshot's entries.
  if (state == ProgressState::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = ProgressState::kProbe;
  probe_sent = false;
  pending_snapshot = LogIndex(0);
  inflights.Reset();
}

void FollowerProgress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = LogIndex(0);
  inflights.Reset();
}

void FollowerProgress::BecomeSnapshot(LogIndex snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.Reset();
}

bool FollowerProgress::MaybeUpdate(LogIndex n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool FollowerProgress::MaybeDecrTo(LogIndex rejected, LogIndex match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection at or below match answers an older message.
    if (rejected <= match) {
      return false;
    }
    next = match + 1;
    return true;
  }
  // In probe only the answer to the latest probe counts.
  if (next != rejected + 1) {
    return false;
  }
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

void FollowerProgress::SentEntries(size_t count, LogIndex last, uint64_t bytes) {
  if (state == ProgressState::kReplicate) {
    if (count > 0) {
      next = last + 1;
      inflights.Add(last, bytes);
    }
  } else if (state == ProgressState::kProbe) {
    probe_sent = true;
  }
}

bool FollowerProgress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

Progress FollowerProgress::ToStatus() const {
  Progress p;
  p.match = match;
  p.next = next;
  p.state = state;
  p.recent_active = recent_active;
  p.inflight = inflights.count();
  p.is_learner = is_learner;
  return p;
}

}  // namespace micedb::raft
