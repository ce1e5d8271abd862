// FollowerProgress: the leader's view of one member's log and the flow control towards it.
//
//   kProbe:     we do not know where its log matches ours; send one MSG_APP per heartbeat
//               interval and back off on rejection until one is accepted.
//   kReplicate: its log matches up to `match`; stream entries optimistically, bounded by the
//               inflight window.
//   kSnapshot:  it needs a snapshot; send nothing until the snapshot is reported done.
#pragma once

#include <cstdint>

#include "common/strong_id.h"
#include "raft/inflights.h"
#include "raft/types.h"

namespace micedb::raft {

struct FollowerProgress {
  FollowerProgress(LogIndex next_index, size_t max_inflight, uint64_t max_inflight_bytes,
                   bool learner)
      : next(next_index), inflights(max_inflight, max_inflight_bytes), is_learner(learner) {}

  LogIndex match;
  LogIndex next;
  ProgressState state = ProgressState::kProbe;
  // kProbe: a MSG_APP is outstanding; wait for its answer or the next heartbeat response.
  bool probe_sent = false;
  // kSnapshot: index of the snapshot being sent.
  LogIndex pending_snapshot;
  // Heard from since the last CheckQuorum round (§6.2 of the thesis).
  bool recent_active = false;
  Inflights inflights;
  bool is_learner = false;
  // Highest heartbeat round it has answered, and the tick at which that round was sent
  // (plus one; 0 = none). Used to confirm ReadIndex requests and the leader lease.
  uint64_t acked_round = 0;
  uint64_t acked_round_tick = 0;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(LogIndex snapshot_index);

  // An acknowledgement up to n. Returns false if it was stale.
  bool MaybeUpdate(LogIndex n);
  // A rejection of the MSG_APP whose preceding index was `rejected`; match_hint is where the
  // follower suggests to continue. Returns false if the rejection was stale.
  bool MaybeDecrTo(LogIndex rejected, LogIndex match_hint);
  // Records a MSG_APP carrying `count` entries (last one `last`) of `bytes` bytes.
  void SentEntries(size_t count, LogIndex last, uint64_t bytes);

  // Whether to hold back new MSG_APP.
  bool IsPaused() const;

  Progress ToStatus() const;
};

}  // namespace micedb::raft
