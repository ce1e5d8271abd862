// Raft: the consensus state machine behind RawNode. Roles are step functions selected by
// role_ (StepLeader / StepCandidate / StepFollower), not subclasses; time is Tick(). Outputs
// (messages, read states) accumulate until RawNode collects them into a Ready.
//
// Files: raft.cc holds creation, role changes, ticks, the term rules common to every message
// and elections; raft_leader.cc the leader (replication, commit, reads, transfer, membership);
// raft_follower.cc the follower and candidate handlers.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/strong_id.h"
#include "micedb/raft.pb.h"
#include "raft/raft_log.h"
#include "raft/rand.h"
#include "raft/read_only.h"
#include "raft/tracker.h"
#include "raft/types.h"

namespace micedb::raft {

// Message.context of a MSG_VOTE sent because of a leadership transfer: voters honour it even
// while they believe a leader is alive (thesis §3.10 and §4.2.3).
inline constexpr std::string_view kCampaignTransfer = "transfer";

class Raft {
 public:
  // Errors: InvalidArgument for a bad config; Corruption for an inconsistent stored state;
  // whatever the storage returns.
  static Result<std::unique_ptr<Raft>> Create(const Config& cfg);

  void Tick();
  // A message from the network (already checked for addressing by RawNode). Entries and
  // snapshot data may be moved out of m.
  Status Step(Message& m);
  Status Campaign();
  // Appends normal entries (leader) or forwards them (follower with forwarding). Returns the
  // term and index of the last entry appended by a leader, (0, 0) when forwarded.
  Result<std::pair<Term, LogIndex>> Propose(std::vector<std::string> data, bool allow_forward);
  Result<std::pair<Term, LogIndex>> ProposeConfChange(const ConfChange& cc);
  std::vector<Message> AnnounceBigEntries(uint64_t bytes);  // RawNode::AnnounceBigEntries
  // A leader's heartbeats to every follower, taken out of msgs_ at once (RawNode::HeartbeatNow).
  std::vector<Message> HeartbeatsNow(uint64_t big_entry_bytes = 0);
  ConfState ApplyConfChange(const ConfChange& cc);
  void ReadIndex(std::string ctx);
  void TransferLeader(NodeId target);
  void ReportUnreachable(NodeId id);
  void ReportSnapshot(NodeId id, SnapshotStatus status);
  void ReportPersisted(LogIndex index, Term term);
  // RawNode::SendCommitNow.
  void SendCommitNow();
  // The application applied entries (RawNode::Advance).
  void OnApplied();

  // Outputs.
  std::vector<Message> TakeMessages() { return std::exchange(msgs_, {}); }
  std::vector<ReadState> TakeReadStates() { return std::exchange(read_states_, {}); }
  std::vector<std::string> TakeDroppedReads() { return std::exchange(dropped_reads_, {}); }
  bool HasMessages() const { return !msgs_.empty(); }
  bool HasReadStates() const { return !read_states_.empty(); }

  HardState GetHardState() const;
  SoftState GetSoftState() const { return SoftState{lead_, role_}; }
  NodeStatus GetStatus() const;

  NodeId id() const { return id_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  Role role() const { return role_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  ProgressTracker& tracker() { return tracker_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  // Whether a lease read would be answered without a heartbeat round now.
  bool LeaseValid() const;
  // For an application that serves reads under the lease itself, against a real clock: the
  // tick count (ticks()) at which the latest heartbeat round a quorum of voters answered was
  // sent. Each of those voters refuses to vote for another candidate for election_tick of its
  // own ticks after receiving it (with check_quorum and a startup guard on restarted nodes).
  // nullopt when no lease may be claimed: not the leader, a transfer under way, MSG_TIMEOUT_NOW
  // sent in this term, or no round answered yet. The start does not move while rounds go
  // unanswered, so the caller must bound the lease by time (ticks() - start). A group whose
  // only voter is this node gets ticks().
  std::optional<uint64_t> LeaseStart() const;
  // Tick() calls since this node was created.
  uint64_t ticks() const { return ticks_; }
  // RawNode::Quiet and RawNode::Woken (hibernation).
  bool Quiet() const;
  void Woken();

 private:
  explicit Raft(const Config& cfg);

  // --- raft.cc: roles, time, common rules, elections ---
  void Reset(Term term);
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void ResetRandomizedElectionTimeout();
  bool Promotable() const { return tracker_.IsVoter(id_); }
  // Whether cc takes this node out of the voters.
  bool RemovesSelf(const ConfChange& cc) const;
  // Whether an entry after the applied index is a conf change that removes this node.
  bool UnappliedChangeRemovesSelf() const;
  bool HasUnappliedConfChange() const;
  Status Hup(bool transfer);
  void StartElection(bool pre_vote, bool transfer);
  void TickElection();
  void TickHeartbeat();
  void HandleVoteRequest(const Message& m);
  void Send(Message m);
  void DropPendingReads();
  bool InLease() const;

  // --- raft_leader.cc ---
  Status StepLeader(Message& m);
  LogIndex AppendAsLeader(std::vector<Entry> ents);
  // Sends the next MSG_APP to `to` if flow control allows (or a snapshot if the entries are
  // compacted). empty_probe: send an entry-less MSG_APP even when paused.
  bool MaybeSendAppend(NodeId to, bool send_if_empty, bool empty_probe = false);
  void SendAppendAll(NodeId to);  // as many MSG_APP as flow control allows
  bool SendSnapshot(NodeId to, FollowerProgress* pr);
  void SendHeartbeat(NodeId to, uint64_t round, uint64_t big_entry_bytes = 0);
  void BcastAppend();
  void BcastHeartbeat(uint64_t big_entry_bytes = 0);
  bool MaybeCommit();
  void OnCommitAdvanced();
  // After the commit index moved: tell the followers (every follower an append, or with
  // Config::lazy_commit only those that have entries waiting; `answered` is the follower whose
  // answer moved it, handled by the caller).
  void SendCommit(NodeId answered = NodeId());
  void HandleAppendResponse(const Message& m, FollowerProgress* pr);
  void HandleHeartbeatResponse(const Message& m, FollowerProgress* pr);
  void HandleReadRequest(std::string ctx, NodeId from);
  void StartRead(ReadRequest r);
  void ServeRead(const ReadRequest& r, LogIndex index);
  void ReleaseConfirmedReads();
  bool CommittedInCurrentTerm() const;
  void HandleTransferLeader(NodeId target);
  void SendTimeoutNow(NodeId to);
  void AbortLeaderTransfer() { lead_transferee_ = NodeId(); }
  uint64_t RoundSentTick(uint64_t round) const;
  Status CheckConfChange(const ConfChange& cc) const;

  // --- raft_follower.cc ---
  Status StepFollower(Message& m);
  // A message from the leader of our term: reset the election timer and renew the promise
  // not to vote for another candidate (InLease).
  void HeardFromLeader(NodeId leader);
  // Allows `bytes` of new entries their extra ticks (Config::slow_entry_bytes_per_tick);
  // whether that lengthened the allowance (a leader then announces it; one the store
  // announced already is not announced again).
  bool AllowForEntries(uint64_t bytes);
  Status StepCandidate(Message& m);
  void HandleAppend(Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(Message& m);
  // Installs *snap (moved from) unless it is stale. Returns whether it was installed.
  bool Restore(Snapshot* snap);

  Config cfg_;
  NodeId id_;
  Term term_;
  NodeId vote_;
  NodeId lead_;
  Role role_ = Role::kFollower;
  RaftLog log_;
  ProgressTracker tracker_;
  ReadOnly read_only_;
  SplitMix64 rng_;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  std::vector<std::string> dropped_reads_;

  // Ticks since the leader was heard from (leader: since the last CheckQuorum round);
  // negative while a big entry's allowance lasts (AllowForEntries).
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  int lease_ticks_ = 0;
  uint64_t ticks_ = 0;  // ticks since creation: the leader's clock for the lease
  // Lease mode: a freshly started node may have promised a leader (before a crash) not to vote
  // for anyone else for an election timeout; it keeps that promise after restarting.
  bool startup_lease_ = false;
  // With check_quorum: having heard from a leader at tick t, this node refuses other candidates
  // (but a transfer's) until tick t + election_tick, whatever happens to lead_ meanwhile: a
  // higher term arriving in a message not from a leader (a rejected pre-vote's answer, say)
  // clears lead_ but must not end the promise a lease relies on.
  uint64_t promise_until_tick_ = 0;

  NodeId lead_transferee_;
  // A MSG_TIMEOUT_NOW arrived while a committed conf change was still unapplied; campaign as
  // soon as it is applied (within this election timeout).
  bool campaign_when_applied_ = false;
  // A MSG_TIMEOUT_NOW was sent this term: voters may have dropped their promise to this
  // leader, so its lease can no longer be trusted.
  bool timeout_now_sent_ = false;
  // Index of the latest conf change in the leader's log; a new one waits until it is applied.
  LogIndex pending_conf_index_;
  // The leader's log holds a change that removes it from the voters. It then appends nothing
  // more: were it to hold entries no remaining voter has, it could deny them the votes they
  // need while being unable to campaign itself once the change applies.
  bool removing_self_ = false;

  // Heartbeat rounds (leader): hb_round_ is the latest round sent; round_ticks_ holds
  // (first round sent in a tick, that tick) for recent ticks.
  uint64_t hb_round_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> round_ticks_;
};

}  // namespace micedb::raft
