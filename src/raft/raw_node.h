// RawNode: the public face of the Raft core. A pure state machine: it does no I/O, starts no
// thread, reads no clock and takes no lock. Time is Tick(); input is Step() and the client
// calls; output is a Ready that the application persists, sends and applies before calling
// Advance(). See docs/raft.md.
//
// Thread-safety: none. A RawNode must be used by one thread at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/strong_id.h"
#include "raft/log_storage.h"
#include "raft/types.h"

namespace micedb::raft {

class Raft;

class RawNode {
 public:
  // Reads the initial hard state, membership and log from cfg.storage.
  // Errors: InvalidArgument for a bad Config; whatever the storage returns.
  static Result<std::unique_ptr<RawNode>> Create(const Config& cfg);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances logical time by one tick (elections, heartbeats, CheckQuorum, lease).
  void Tick();

  // Starts an election now (a pre-vote first when Config::pre_vote). OK on a leader.
  // Errors: NotSupported if this node is not a voter.
  Status Campaign();

  // Appends data to the log. Errors: NotLeader (no leader known, or a follower when
  // forward_proposals is false; the message names the leader when known); Aborted while a
  // leadership transfer is in progress. OK from a forwarding follower means "sent to the
  // leader", not "accepted": the forwarded proposal may still be dropped.
  Status Propose(std::string data);
  // As Propose, for several entries at once (one broadcast for the whole batch).
  Status ProposeBatch(std::vector<std::string> data);
  // Leader only: appends data and returns the (term, index) it was given, so the caller can
  // tell later whether that entry committed or was overwritten by another leader.
  // Errors: NotLeader, Aborted.
  Result<std::pair<Term, LogIndex>> ProposeWithIndex(std::string data);
  // As ProposeWithIndex for several entries at once: they get consecutive indexes ending at
  // the returned one, and one MSG_APP per follower carries them all. Errors as
  // ProposeWithIndex; InvalidArgument for an empty batch.
  Result<std::pair<Term, LogIndex>> ProposeBatchWithIndex(std::vector<std::string> data);
  // A leader about to propose `bytes` of entries (Config::slow_entry_bytes_per_tick): starts
  // their allowance and returns heartbeats that announce them, to be sent at once, outside
  // the Ready cycle (a leader's heartbeats promise nothing about its log). Copying and
  // encoding a big entry takes a while before its Ready exists; the followers should know
  // before. Empty when not the leader or the bytes come to less than a tick.
  std::vector<Message> AnnounceBigEntries(uint64_t bytes);
  // A leader's heartbeats to every follower, to be sent at once outside the Ready cycle: for
  // an application whose loop is stuck in long work (a big apply) and must not look dead to
  // the followers. Empty when not the leader.
  std::vector<Message> HeartbeatNow();

  // Proposes a single-server membership change (leader only, never forwarded).
  // Errors: NotLeader; Aborted during a transfer; Busy while a previous change is not yet
  // applied or no entry of the current term has committed; InvalidArgument for node 0, for
  // removing the last voter, or for a change that changes nothing.
  Status ProposeConfChange(const ConfChange& cc);
  // As ProposeConfChange, returning where the entry went.
  Result<std::pair<Term, LogIndex>> ProposeConfChangeWithIndex(const ConfChange& cc);

  // Makes a committed conf change take effect; call it while applying the entry. Returns the
  // new membership (persist it with the applied state).
  ConfState ApplyConfChange(const ConfChange& cc);

  // Feeds a message from the network. Errors: InvalidArgument for a message that is not for
  // this node, has no sender, or has an unknown type. Stale messages are ignored (OK).
  Status Step(const Message& m);
  // As above, taking the message's entries and snapshot instead of copying them.
  Status Step(Message&& m);

  // Requests a linearizable read point. The answer is a ReadState with the same ctx in a later
  // Ready. If there is no leader the ctx is dropped at once (TakeDroppedReads); a read
  // forwarded to a leader that then loses leadership is lost silently (time out and retry).
  void ReadIndex(std::string ctx);

  // Asks the leader to hand leadership to target (forwarded by followers). The leader catches
  // the target up, sends it MSG_TIMEOUT_NOW, and refuses proposals meanwhile; it gives up after
  // an election timeout.
  void TransferLeader(NodeId target);

  bool HasReady() const;
  // Everything there is to do now; each piece is handed out once.
  Ready GetReady();
  // Acknowledges that the last Ready from GetReady has been persisted, sent and applied. The
  // node remembers what it handed out, so the application may move the contents out of rd
  // (e.g. entries into its storage) before calling this.
  void Advance(const Ready& rd);

  // The transport could not reach id: the leader falls back to probing it.
  void ReportUnreachable(NodeId id);
  // The outcome of sending a MSG_SNAP to id.
  void ReportSnapshot(NodeId id, SnapshotStatus status);
  // With Config::async_leader_persist: every entry up to `index` is durable, the entry at
  // `index` having term `term` (the last entry of a persisted Ready). A leader then counts its
  // own copy of them; a report that no longer matches the log (the entry was replaced) or
  // arrives at a node that is no longer leader is ignored. Without the option it is a no-op.
  void ReportPersisted(LogIndex index, Term term);

  // With Config::lazy_commit: a leader sends every follower an append carrying its commit
  // index now, for entries the followers should apply soon (a split, a membership change).
  // Without the option, or on a non-leader, it changes nothing worth noting (a leader sends
  // the appends all the same).
  void SendCommitNow();

  NodeStatus GetStatus() const;

  // Hibernation (the application stops ticking an idle group; docs/sharding.md §5). Quiet: this
  // node leads, and there is nothing to do -- every member's log matches the leader's, all of it
  // committed and applied, no membership change, transfer, read or message pending. Woken: the
  // application ticks this node again after a pause; a leader then heartbeats at the next tick
  // and gives its followers a whole election timeout to answer before CheckQuorum counts them.
  bool Quiet() const;
  void Woken();

  // The leader lease for reads served by the application (Raft::LeaseStart, raft.md §7): the
  // tick count at which the latest heartbeat round a quorum answered was sent, or nullopt.
  std::optional<uint64_t> LeaseStart() const;
  // Tick() calls since this node was created (the clock LeaseStart counts in).
  uint64_t Ticks() const;
  Term CurrentTerm() const;
  LogIndex Committed() const;

  // Read ctxs that could not be served (no leader, or the leader stepped down before
  // confirming them). Clears the list.
  std::vector<std::string> TakeDroppedReads();

  // The core, for tests inside the module.
  Raft& raft_for_test() { return *raft_; }

 private:
  explicit RawNode(std::unique_ptr<Raft> raft);

  // Checks addressing; Step's two overloads share it.
  Status Validate(const Message& m) const;

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_;
  HardState prev_hard_;
  // What the last GetReady handed out, for Advance.
  struct HandedOut {
    std::optional<std::pair<LogIndex, Term>> last_entry;
    std::optional<LogIndex> snapshot;
    std::optional<LogIndex> last_committed;
  };
  HandedOut handed_out_;
};

}  // namespace micedb::raft
