// The leader: replication with flow control, the commit rule, ReadIndex and leases,
// leadership transfer and membership changes.
#include <algorithm>
#include <limits>

#include "raft/raft.h"

namespace micedb::raft {

// ---------------------------------------------------------------------------------------------
// Proposals

LogIndex Raft::AppendAsLeader(std::vector<Entry> ents) {
  LogIndex last = log_.LastIndex();
  uint64_t bytes = 0;
  for (Entry& e : ents) {
    ++last;
    e.set_term(term_.value());
    e.set_index(last.value());
    bytes += e.data().size();
  }
  // The followers stop answering while they write these (and so does this node), and the
  // entries take a while to reach them: a heartbeat tells them now, ahead of the entries.
  if (AllowForEntries(bytes)) BcastHeartbeat(bytes);
  log_.Append(std::move(ents));
  // The leader's own copy counts towards the quorum once appended: the Ready contract makes
  // the application persist it before any message that could lead to a commit is sent. With
  // async_leader_persist it counts once the application reports it durable.
  if (FollowerProgress* self = tracker_.Get(id_); self && !cfg_.async_leader_persist) {
    self->MaybeUpdate(last);
  }
  if (MaybeCommit()) {
    OnCommitAdvanced();
  }
  return last;
}

Result<std::pair<Term, LogIndex>> Raft::Propose(std::vector<std::string> data, bool allow_forward) {
  if (role_ != Role::kLeader) {
    if (!lead_.valid()) {
      return Status::NotLeader("raft: no leader");
    }
    if (!allow_forward || !cfg_.forward_proposals) {
      return Status::NotLeader("raft: not the leader; leader is " + std::to_string(lead_.value()));
    }
    Message m;
    m.set_type(MSG_PROP);
    m.set_to(lead_.value());
    for (std::string& d : data) {
      m.add_entries()->set_data(std::move(d));
    }
    Send(std::move(m));
    return std::make_pair(Term(0), LogIndex(0));
  }
  if (lead_transferee_.valid()) {
    return Status::Aborted("raft: leadership transfer in progress");
  }
  if (removing_self_) {
    return Status::Aborted("raft: this leader is being removed from the voters");
  }
  std::vector<Entry> ents(data.size());
  for (size_t k = 0; k < data.size(); ++k) {
    ents[k].set_data(std::move(data[k]));
  }
  LogIndex last = AppendAsLeader(std::move(ents));
  BcastAppend();
  return std::make_pair(term_, last);
}

Status Raft::CheckConfChange(const ConfChange& cc) const {
  NodeId target(cc.node_id());
  if (!target.valid()) {
    return Status::InvalidArgument("raft: conf change names node 0");
  }
  bool voter = tracker_.IsVoter(target);
  bool learner = tracker_.IsLearner(target);
  size_t voters = tracker_.voters().size();
  switch (cc.type()) {
    case ADD_VOTER:
      if (voter) {
        return Status::InvalidArgument("raft: node is already a voter");
      }
      break;
    case ADD_LEARNER:
      if (learner) {
        return Status::InvalidArgument("raft: node is already a learner");
      }
      if (voter && voters == 1) {
        return Status::InvalidArgument("raft: cannot demote the last voter");
      }
      break;
    case REMOVE_NODE:
      if (!voter && !learner) {
        return Status::InvalidArgument("raft: node is not a member");
      }
      if (voter && voters == 1) {
        return Status::InvalidArgument("raft: cannot remove the last voter");
      }
      break;
    default:
      return Status::InvalidArgument("raft: unknown conf change type");
  }
  return Status::OK();
}

Result<std::pair<Term, LogIndex>> Raft::ProposeConfChange(const ConfChange& cc) {
  if (role_ != Role::kLeader) {
    return Status::NotLeader(lead_.valid() ? "raft: not the leader; leader is " +
                                                 std::to_string(lead_.value())
                                           : std::string("raft: no leader"));
  }
  if (lead_transferee_.valid()) {
    return Status::Aborted("raft: leadership transfer in progress");
  }
  // Single-server changes are safe one at a time (thesis §4.1): the next one waits until the
  // previous one has taken effect, and until this leader has committed an entry of its own
  // term (the fix in thesis §4.1 / raft-dev 2015 for changes racing with leader changes).
  if (pending_conf_index_ > log_.applied()) {
    return Status::Busy("raft: a membership change is still pending");
  }
  if (!CommittedInCurrentTerm()) {
    return Status::Busy("raft: no entry of the leader's term is committed yet");
  }
  MICEDB_RETURN_IF_ERROR(CheckConfChange(cc));
  std::vector<Entry> ents(1);
  ents[0].set_type(ENTRY_CONF_CHANGE);
  ents[0].set_data(cc.SerializeAsString());
  LogIndex last = AppendAsLeader(std::move(ents));
  pending_conf_index_ = last;
  if (RemovesSelf(cc)) {
    removing_self_ = true;
  }
  BcastAppend();
  return std::make_pair(term_, last);
}

ConfState Raft::ApplyConfChange(const ConfChange& cc) {
  NodeId target(cc.node_id());
  if (target.valid()) {
    switch (cc.type()) {
      case ADD_VOTER:
        tracker_.AddVoter(target);
        break;
      case ADD_LEARNER:
        tracker_.AddLearner(target);
        break;
      case REMOVE_NODE:
        tracker_.Remove(target);
        break;
      default:
        break;
    }
  }
  if (role_ != Role::kLeader) {
    return tracker_.GetConfState();
  }

  bool added = tracker_.Get(target) == nullptr && tracker_.IsMember(target);
  tracker_.SyncProgress(log_.LastIndex() + 1);
  // Start probing a new member now rather than at the next heartbeat.
  if (added && target != id_) {
    SendAppendAll(target);
  }
  if (lead_transferee_.valid() && !tracker_.IsVoter(lead_transferee_)) {
    AbortLeaderTransfer();
  }
  if (!tracker_.IsVoter(id_)) {
    // The leader removed (or demoted) itself. Hand over to a voter that is fully caught up if
    // there is one, so the group does not wait a whole election timeout; then step down.
    NodeId best;
    for (NodeId v : tracker_.voters()) {
      const FollowerProgress* pr = tracker_.Get(v);
      if (pr && pr->match == log_.LastIndex()) {
        best = v;
        break;
      }
    }
    // Tell everyone the commit index first, so that they apply the change too.
    BcastAppend();
    if (best.valid()) {
      SendTimeoutNow(best);
    }
    BecomeFollower(term_, NodeId());
    return tracker_.GetConfState();
  }
  // A smaller quorum may already hold more entries, and pending reads may now be confirmed.
  if (MaybeCommit()) {
    OnCommitAdvanced();
    SendCommit();
  }
  ReleaseConfirmedReads();
  return tracker_.GetConfState();
}

// ---------------------------------------------------------------------------------------------
// Replication

bool Raft::MaybeSendAppend(NodeId to, bool send_if_empty, bool empty_probe) {
  FollowerProgress* pr = tracker_.Get(to);
  if (pr == nullptr) {
    return false;
  }
  if (empty_probe) {
    send_if_empty = true;
  } else if (pr->IsPaused()) {
    return false;
  }
  LogIndex prev = pr->next - 1;
  Result<Term> prev_term = log_.TermAt(prev);
  if (!prev_term.ok()) {
    return SendSnapshot(to, pr);
  }
  uint64_t max_bytes = cfg_.max_size_per_msg;
  if (cfg_.max_inflight_bytes != 0 && pr->state == ProgressState::kReplicate) {
    // Do not overshoot the byte window by more than one entry.
    uint64_t room =
        cfg_.max_inflight_bytes - std::min(cfg_.max_inflight_bytes, pr->inflights.bytes());
    max_bytes = std::min(max_bytes, room);
  }
  std::vector<Entry> ents;
  if (!empty_probe && pr->next <= log_.LastIndex()) {
    Result<std::vector<Entry>> got = log_.EntriesFrom(pr->next, max_bytes);
    if (!got.ok()) {
      return SendSnapshot(to, pr);
    }
    ents = std::move(got).value();
  }
  if (ents.empty() && !send_if_empty) {
    return false;
  }

  Message m;
  m.set_type(MSG_APP);
  m.set_to(to.value());
  m.set_index(prev.value());
  m.set_log_term(prev_term->value());
  m.set_commit(log_.committed().value());
  uint64_t bytes = 0;
  LogIndex last = prev;
  if (!ents.empty()) {
    last = LogIndex(ents.back().index());
    auto* out = m.mutable_entries();
    out->Reserve(static_cast<int>(ents.size()));
    for (Entry& e : ents) {
      bytes += EntrySize(e);
      *out->Add() = std::move(e);
    }
  }
  pr->SentEntries(ents.size(), last, bytes);
  Send(std::move(m));
  return true;
}

void Raft::SendAppendAll(NodeId to) {
  if (!MaybeSendAppend(to, true)) {
    return;
  }
  // In replicate state keep streaming until the window is full or nothing is left.
  while (MaybeSendAppend(to, false)) {
  }
}

bool Raft::SendSnapshot(NodeId to, FollowerProgress* pr) {
  // §7: the follower needs entries we compacted. Only bother if it is reachable.
  if (!pr->recent_active) {
    return false;
  }
  Result<Snapshot> snap = log_.GetSnapshot();
  if (!snap.ok()) {
    return false;  // being made; retried on a later heartbeat response
  }
  if (snap->metadata().index() == 0) {
    return false;
  }
  pr->BecomeSnapshot(LogIndex(snap->metadata().index()));
  Message m;
  m.set_type(MSG_SNAP);
  m.set_to(to.value());
  *m.mutable_snapshot() = std::move(snap).value();
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(NodeId to, uint64_t round, uint64_t big_entry_bytes) {
  const FollowerProgress* pr = tracker_.Get(to);
  // Never tell a follower to commit past what it is known to hold.
  LogIndex commit = std::min(pr ? pr->match : LogIndex(0), log_.committed());
  Message m;
  m.set_type(MSG_HEARTBEAT);
  m.set_to(to.value());
  m.set_commit(commit.value());
  m.set_index(round);
  m.set_big_entry_bytes(big_entry_bytes);
  Send(std::move(m));
}

void Raft::BcastAppend() {
  for (auto& [id, pr] : tracker_.progress()) {
    if (id != id_) {
      SendAppendAll(id);
    }
  }
}

void Raft::SendCommit(NodeId answered) {
  if (!cfg_.lazy_commit) {
    BcastAppend();
    return;
  }
  // Entries waiting go out now (carrying the new commit index); a follower with nothing
  // waiting hears of it from the next append or heartbeat.
  for (auto& [id, pr] : tracker_.progress()) {
    if (id == id_ || id == answered || pr.next > log_.LastIndex()) continue;
    while (MaybeSendAppend(id, false)) {
    }
  }
}

void Raft::BcastHeartbeat(uint64_t big_entry_bytes) {
  uint64_t round = ++hb_round_;
  if (round_ticks_.empty() || round_ticks_.back().second != ticks_) {
    round_ticks_.emplace_back(round, ticks_);
  }
  // Rounds older than an election timeout can no longer extend the lease.
  while (round_ticks_.size() > 1 &&
         round_ticks_.front().second + static_cast<uint64_t>(cfg_.election_tick) < ticks_) {
    round_ticks_.pop_front();
  }
  for (auto& [id, pr] : tracker_.progress()) {
    if (id != id_) {
      SendHeartbeat(id, round, big_entry_bytes);
    }
  }
}

uint64_t Raft::RoundSentTick(uint64_t round) const {
  // round_ticks_ holds the first round of each tick; the tick of `round` is that of the last
  // entry at or below it. 0 = unknown (too old).
  auto it = std::upper_bound(
      round_ticks_.begin(), round_ticks_.end(), round,
      [](uint64_t r, const std::pair<uint64_t, uint64_t>& e) { return r < e.first; });
  if (it == round_ticks_.begin()) {
    return 0;
  }
  return std::prev(it)->second + 1;
}

bool Raft::MaybeCommit() {
  LogIndex mci = tracker_.CommittedIndex();
#ifdef MICEDB_RAFT_BUG_COMMIT_OLD_TERM
  // Deliberately broken (test builds only): commits an entry of any term once a majority
  // holds it, which Figure 8 shows can commit an entry that a later leader overwrites.
  if (mci > log_.committed()) {
    log_.CommitTo(mci);
    return true;
  }
  return false;
#else
  // §5.4.2: only an entry of the leader's current term is committed by counting replicas;
  // earlier entries commit with it through the Log Matching property.
  return log_.MaybeCommit(mci, term_);
#endif
}

bool Raft::CommittedInCurrentTerm() const { return log_.TermOrZero(log_.committed()) == term_; }

void Raft::OnCommitAdvanced() {
  if (read_only_.HasWaiting() && CommittedInCurrentTerm()) {
    for (ReadRequest& r : read_only_.TakeWaiting()) {
      StartRead(std::move(r));
    }
  }
}

Status Raft::StepLeader(Message& m) {
  NodeId from(m.from());
  switch (m.type()) {
    case MSG_PROP: {
      if (lead_transferee_.valid() || removing_self_ || m.entries_size() == 0) {
        return Status::OK();  // dropped
      }
      std::vector<Entry> ents;
      ents.reserve(static_cast<size_t>(m.entries_size()));
      for (Entry& e : *m.mutable_entries()) {
        // Conf changes are never forwarded (they must pass ProposeConfChange's checks).
        if (e.type() == ENTRY_NORMAL) {
          ents.emplace_back().set_data(std::move(*e.mutable_data()));
        }
      }
      if (ents.empty()) {
        return Status::OK();
      }
      AppendAsLeader(std::move(ents));
      BcastAppend();
      return Status::OK();
    }
    case MSG_READ_INDEX:
      HandleReadRequest(m.context(), from);
      return Status::OK();
    case MSG_TRANSFER_LEADER:
      HandleTransferLeader(NodeId(m.index()));
      return Status::OK();
    case MSG_READ_INDEX_RESP:
      // Answer to a read forwarded before we became leader; still a valid read point.
      read_states_.push_back(ReadState{LogIndex(m.index()), m.context()});
      return Status::OK();
    default:
      break;
  }
  FollowerProgress* pr = tracker_.Get(from);
  if (pr == nullptr) {
    return Status::OK();  // not (or no longer) a member
  }
  switch (m.type()) {
    case MSG_APP_RESP:
      HandleAppendResponse(m, pr);
      break;
    case MSG_HEARTBEAT_RESP:
      HandleHeartbeatResponse(m, pr);
      break;
    default:
      break;  // e.g. a vote response that arrives after we won
  }
  return Status::OK();
}

void Raft::HandleAppendResponse(const Message& m, FollowerProgress* pr) {
  NodeId from(m.from());
  pr->recent_active = true;
  if (m.reject()) {
    // §5.3 with the optimisation at its end: the follower told us where its log could match
    // (reject_hint) and the term there (reject_term); skip every entry of ours with a larger
    // term in one step instead of one index per round trip.
    LogIndex next_probe(m.reject_hint());
    if (m.reject_term() > 0) {
      next_probe = log_.FindConflictByTerm(LogIndex(m.reject_hint()), Term(m.reject_term())).first;
    }
    if (pr->MaybeDecrTo(LogIndex(m.index()), next_probe)) {
      if (pr->state == ProgressState::kReplicate) {
        pr->BecomeProbe();
      }
      SendAppendAll(from);
    }
    return;
  }
  bool was_paused = pr->IsPaused();
  LogIndex acked(m.index());
  bool updated = pr->MaybeUpdate(acked);
  if (!updated && !(pr->state == ProgressState::kProbe && pr->match == acked)) {
    return;  // stale
  }
  switch (pr->state) {
    case ProgressState::kProbe:
      pr->BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      // The snapshot (or entries past it) arrived; resume normal replication.
      if (pr->match >= pr->pending_snapshot || pr->match + 1 >= log_.FirstIndex()) {
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr->inflights.FreeLE(acked);
      break;
  }
  if (MaybeCommit()) {
    OnCommitAdvanced();
    SendCommit(from);
    if (cfg_.lazy_commit && (was_paused || pr->next <= log_.LastIndex())) SendAppendAll(from);
  } else if (was_paused || pr->next <= log_.LastIndex()) {
    SendAppendAll(from);
  }
  if (from == lead_transferee_ && pr->match == log_.LastIndex()) {
    SendTimeoutNow(from);
  }
}

void Raft::HandleHeartbeatResponse(const Message& m, FollowerProgress* pr) {
  NodeId from(m.from());
  pr->recent_active = true;
  pr->probe_sent = false;
  if (m.index() > pr->acked_round) {
    pr->acked_round = m.index();
    uint64_t tick = RoundSentTick(m.index());
    if (tick > pr->acked_round_tick) {
      pr->acked_round_tick = tick;
    }
  }
  if (pr->match < log_.LastIndex()) {
    if (pr->state == ProgressState::kReplicate && pr->inflights.Full()) {
      // The window is full and the follower is behind: perhaps every message in it was lost,
      // and nothing more would ever be sent. An empty MSG_APP after the window either gets
      // acknowledged (freeing it) or rejected (exposing the gap, and we fall back to probe).
      MaybeSendAppend(from, true, /*empty_probe=*/true);
    } else {
      SendAppendAll(from);
    }
  }
  ReleaseConfirmedReads();
}

// ---------------------------------------------------------------------------------------------
// Reads (thesis §6.4)

void Raft::ReadIndex(std::string ctx) {
  if (role_ == Role::kLeader) {
    HandleReadRequest(std::move(ctx), id_);
    return;
  }
  if (!lead_.valid()) {
    dropped_reads_.push_back(std::move(ctx));
    return;
  }
  Message m;
  m.set_type(MSG_READ_INDEX);
  m.set_to(lead_.value());
  m.set_context(std::move(ctx));
  Send(std::move(m));
}

void Raft::HandleReadRequest(std::string ctx, NodeId from) {
  ReadRequest r{std::move(ctx), from, LogIndex(0), 0};
  if (!CommittedInCurrentTerm()) {
    // Step 1 of §6.4: until an entry of this term commits, the commit index may lag the
    // previous leader's, so it is no read point yet.
    read_only_.AddWaiting(std::move(r));
    return;
  }
  StartRead(std::move(r));
}

void Raft::StartRead(ReadRequest r) {
  r.index = log_.committed();
  if (tracker_.voters().size() == 1 && tracker_.IsVoter(id_)) {
    ServeRead(r, r.index);  // a group of one confirms itself
    return;
  }
  if (cfg_.read_only == ReadOnlyOption::kLeaseBased && LeaseValid()) {
    ServeRead(r, r.index);
    return;
  }
  // Step 2: confirm we are still leader with a heartbeat round sent after the request arrived.
  r.round = hb_round_ + 1;
  read_only_.Add(std::move(r));
  BcastHeartbeat();
}

std::optional<uint64_t> Raft::LeaseStart() const {
  if (role_ != Role::kLeader || lead_transferee_.valid() || timeout_now_sent_) {
    return std::nullopt;
  }
  // The lease runs from the send time of the latest heartbeat round a majority answered:
  // each of those voters refuses to vote for another candidate for an election timeout after
  // receiving it (InLease). acked_round_tick is the send tick plus one (0 = none).
  uint64_t start = tracker_.QuorumOf([&](NodeId id, const FollowerProgress& pr) {
    return id == id_ ? ticks_ + 1 : pr.acked_round_tick;
  });
  if (start == 0) {
    return std::nullopt;
  }
  return start - 1;
}

bool Raft::Quiet() const {
  if (role_ != Role::kLeader || lead_transferee_.valid() || removing_self_ || !msgs_.empty() ||
      read_only_.HasPending() || read_only_.HasWaiting()) {
    return false;
  }
  const LogIndex last = log_.LastIndex();
  if (log_.committed() != last || log_.applied() != last || pending_conf_index_ > log_.applied()) {
    return false;
  }
  // Every member holds the whole log, this node's own copy durable too.
  for (const auto& [id, pr] : tracker_.progress()) {
    if (pr.match != last) return false;
  }
  return true;
}

void Raft::Woken() {
  if (role_ != Role::kLeader) return;
  // The followers were asked nothing while this leader went unticked: CheckQuorum gets a whole
  // election timeout to hear from them again, and they hear from it at the next tick.
  election_elapsed_ = 0;
  heartbeat_elapsed_ = cfg_.heartbeat_tick;
}

bool Raft::LeaseValid() const {
  // lease_ticks is shorter than the voters' election timeout.
  std::optional<uint64_t> start = LeaseStart();
  return start.has_value() && ticks_ < *start + static_cast<uint64_t>(lease_ticks_);
}

void Raft::ServeRead(const ReadRequest& r, LogIndex index) {
  if (r.from == id_) {
    read_states_.push_back(ReadState{index, r.ctx});
    return;
  }
  Message m;
  m.set_type(MSG_READ_INDEX_RESP);
  m.set_to(r.from.value());
  m.set_index(index.value());
  m.set_context(r.ctx);
  Send(std::move(m));
}

void Raft::ReleaseConfirmedReads() {
  if (!read_only_.HasPending()) {
    return;
  }
  uint64_t confirmed = tracker_.QuorumOf([&](NodeId id, const FollowerProgress& pr) {
    return id == id_ ? hb_round_ : pr.acked_round;
  });
  for (const ReadRequest& r : read_only_.TakeConfirmed(confirmed)) {
    ServeRead(r, r.index);
  }
}

// ---------------------------------------------------------------------------------------------
// Leadership transfer (thesis §3.10)

void Raft::TransferLeader(NodeId target) {
  if (role_ == Role::kLeader) {
    HandleTransferLeader(target);
    return;
  }
  if (!lead_.valid()) {
    return;
  }
  Message m;
  m.set_type(MSG_TRANSFER_LEADER);
  m.set_to(lead_.value());
  m.set_index(target.value());
  Send(std::move(m));
}

void Raft::HandleTransferLeader(NodeId target) {
  if (target == id_ || !tracker_.IsVoter(target)) {
    return;  // learners cannot lead
  }
  if (lead_transferee_.valid()) {
    if (lead_transferee_ == target) {
      return;
    }
    AbortLeaderTransfer();
  }
  lead_transferee_ = target;
  // The transfer gets one election timeout to finish (after a big entry's allowance).
  election_elapsed_ = std::min(election_elapsed_, 0);
  const FollowerProgress* pr = tracker_.Get(target);
  if (pr != nullptr && pr->match == log_.LastIndex()) {
    SendTimeoutNow(target);
  } else {
    SendAppendAll(target);
  }
}

void Raft::SendTimeoutNow(NodeId to) {
  timeout_now_sent_ = true;
  Message m;
  m.set_type(MSG_TIMEOUT_NOW);
  m.set_to(to.value());
  Send(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Transport feedback

void Raft::ReportUnreachable(NodeId id) {
  if (role_ != Role::kLeader) {
    return;
  }
  FollowerProgress* pr = tracker_.Get(id);
  // Messages in flight were probably lost: stop streaming and probe.
  if (pr != nullptr && pr->state == ProgressState::kReplicate) {
    pr->BecomeProbe();
  }
}

void Raft::ReportPersisted(LogIndex index, Term term) {
  if (!cfg_.async_leader_persist || role_ != Role::kLeader) {
    return;
  }
  // Log Matching: an entry of the same index and term means the same entries up to it. An
  // entry since replaced (this node lost leadership and got another leader's log) does not.
  if (!log_.MatchTerm(index, term)) {
    return;
  }
  FollowerProgress* self = tracker_.Get(id_);
  if (self == nullptr || !self->MaybeUpdate(index)) {
    return;
  }
  if (MaybeCommit()) {
    OnCommitAdvanced();
    SendCommit();
  }
}

void Raft::SendCommitNow() {
  if (role_ == Role::kLeader) BcastAppend();
}

void Raft::ReportSnapshot(NodeId id, SnapshotStatus status) {
  if (role_ != Role::kLeader) {
    return;
  }
  FollowerProgress* pr = tracker_.Get(id);
  if (pr == nullptr || pr->state != ProgressState::kSnapshot) {
    return;
  }
  if (status == SnapshotStatus::kFailure) {
    pr->pending_snapshot = LogIndex(0);
  }
  pr->BecomeProbe();
  // Wait for the next heartbeat response before probing, so a failed send is not retried in
  // a tight loop.
  pr->probe_sent = true;
}

}  // namespace micedb::raft
