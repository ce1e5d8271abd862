// Value types of the Raft core's public API: configuration, the Ready batch, and the status
// snapshot. Included by raft/raw_node.h, the module's public face.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/strong_id.h"
#include "micedb/raft.pb.h"

namespace micedb::raft {

class LogStorage;

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
enum class ReadOnlyOption {
  kSafe,        // every read is confirmed by a heartbeat round to a quorum (no clock assumption)
  kLeaseBased,  // the leader answers alone while its lease holds (assumes bounded clock drift)
};
enum class SnapshotStatus { kFinish, kFailure };
enum class ProgressState { kProbe, kReplicate, kSnapshot };

std::string_view RoleName(Role r);
std::string_view ProgressStateName(ProgressState s);

struct Config {
  NodeId id;
  // Ticks without hearing from a leader before a follower campaigns; each node draws its
  // actual timeout from [election_tick, 2*election_tick) after every reset (paper §5.2).
  int election_tick = 10;
  // Ticks between leader heartbeats; must be smaller than election_tick.
  int heartbeat_tick = 1;
  LogStorage* storage = nullptr;        // not owned; must outlive the node
  LogIndex applied;                     // last index applied to the state machine before a restart
  uint64_t max_size_per_msg = 1 << 20;  // bytes of entries per MSG_APP (>= 1 entry)
  uint64_t max_committed_size_per_ready = 64 << 20;  // bytes of committed_entries per Ready
  size_t max_inflight_msgs = 256;                    // unacknowledged MSG_APP per follower
  uint64_t max_inflight_bytes = 0;                   // their total bytes; 0 = no byte limit
  bool pre_vote = true;                              // §9.6: ask before bumping the term
  bool check_quorum = true;  // leader steps down without a quorum's word for an election timeout
  ReadOnlyOption read_only = ReadOnlyOption::kSafe;  // kLeaseBased requires check_quorum
  // Lease length in ticks for kLeaseBased, counted from when the confirming heartbeat round was
  // sent; 0 means election_tick - 1. Must be shorter than election_tick.
  int lease_ticks = 0;
  // Refuse votes for one election timeout after start, as kLeaseBased does: before a crash
  // this node may have promised a leader not to vote for anyone else for that long. Needed
  // by an application that serves reads under the leader's lease itself (Raft::LeaseStart)
  // while keeping kSafe for ReadIndex.
  bool startup_vote_guard = false;
  bool forward_proposals = false;  // false: Propose on a non-leader fails with NotLeader
  // false: a leader counts its own copy of an entry towards the quorum as soon as it appends
  // it, so the application must make a Ready's entries durable before the next GetReady.
  // true: it counts its copy only once the application reports it durable
  // (RawNode::ReportPersisted), so the application may sync a leader's entries on another
  // thread and go on stepping and handing out Readys meanwhile; the entries must still be
  // readable through the LogStorage once the Ready is advanced (raft.md §2).
  bool async_leader_persist = false;
  uint64_t random_seed = 0;  // mixed with the id: same seed -> same timeouts
  // Big entries and the election timer (raft.md §8). A node stops ticking while it writes or
  // applies a big entry, and so do its peers, each for its own length of time: on a loaded
  // machine a 64 MiB entry can hold a node for seconds, more than an election timeout, and
  // the one that finishes first would depose a leader that is only busy. So a follower that
  // takes B bytes of entries from its leader, and a leader that appends B bytes, allow
  // B / slow_entry_bytes_per_tick extra ticks before the election timeout (follower) or the
  // next CheckQuorum (leader). It only ever delays an election or a step-down, so leases and
  // votes are as safe as without it; a leader that dies right after a big entry is replaced
  // that much later. 0: no allowance.
  uint64_t slow_entry_bytes_per_tick = 0;
  // How followers learn a new commit index (raft.md §4). false: as soon as it moves, the
  // leader sends every follower an append carrying it (with entries or without), as the paper
  // and etcd do. true: the leader sends nothing of its own for it; the next append or
  // heartbeat carries it, so a follower applies up to one heartbeat interval later. That
  // halves the messages of a group that takes one write at a time (append and answers only),
  // and nothing waits for a follower's apply: reads are served by the leader, and an
  // application that needs the followers to apply soon (a split) calls
  // RawNode::SendCommitNow. Safety is untouched: commit is only ever learnt later.
  bool lazy_commit = false;

  // InvalidArgument naming the first bad field, or OK.
  Status Validate() const;
};

struct SoftState {
  NodeId leader;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

// A linearizable read point: once the state machine has applied `index`, a read issued with
// `request_ctx` may be served from it.
struct ReadState {
  LogIndex index;
  std::string request_ctx;
};

// One batch of work for the application. Handle it in this order, then call Advance(ready):
//   1. snapshot: install it (storage and state machine) if set;
//   2. entries and hard_state: persist (append entries, then save the hard state); fsync when
//      must_sync;
//   3. messages: send;
//   4. committed_entries: apply in order (conf changes through RawNode::ApplyConfChange);
//   5. read_states: serve each once the applied index reaches its index.
// When send_before_persist is set, step 3 may come before step 2 (or run while it does); step
// 4 still waits for step 2.
struct Ready {
  std::optional<SoftState> soft_state;   // set when leader or role changed
  std::optional<HardState> hard_state;   // set when term/vote/commit changed: persist it
  std::vector<ReadState> read_states;    // reads that may be served once applied >= index
  std::vector<Entry> entries;            // persist (append) BEFORE sending messages
  std::optional<Snapshot> snapshot;      // persist/install before anything else
  std::vector<Entry> committed_entries;  // apply, in order
  std::vector<Message> messages;         // send AFTER entries/hard state/snapshot are durable
  bool must_sync = false;                // entries or term/vote changed: fsync before sending
  // A leader's Ready in which term and vote did not change, and whose commit index covers none
  // of its entries: its messages promise nothing that this Ready persists, so they may leave
  // before (or while) its entries are written (thesis §10.2.1). The leader still counts its
  // own copy of an entry from the moment it is appended: whatever follows from that count (a
  // commit, a confirmed read) comes out in a later Ready, handed out only after Advance and
  // so after this Ready's writes, or in this Ready's committed_entries, which step 4 applies
  // after step 2. The exception is a group with one voter, where the append alone commits:
  // then this Ready's messages tell learners of a commit that is not durable yet, and the
  // flag is false.
  bool send_before_persist = false;
};

// What the leader knows about one member's log.
struct Progress {
  LogIndex match;  // highest index known to be replicated there
  LogIndex next;   // next index to send
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;  // heard from it since the last CheckQuorum round
  size_t inflight = 0;         // MSG_APP sent and not yet acknowledged
  bool is_learner = false;
};

struct NodeStatus {
  NodeId id;
  Role role = Role::kFollower;
  Term term;
  NodeId vote;
  NodeId leader;
  LogIndex commit;
  LogIndex applied;
  NodeId lead_transferee;
  std::map<NodeId, Progress> progress;  // leader only (includes the leader itself)
  ConfState conf_state;
  // Leader only: the index of the latest entry that may change the configuration (at least the
  // last index when it took over); above `applied`, a change may be under way.
  LogIndex pending_conf_index;
};

}  // namespace micedb::raft
