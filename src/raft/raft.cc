#include "raft/raft.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "raft/log_storage.h"

namespace micedb::raft {

namespace {

// Messages that are about a request rather than a term: a forwarded proposal, read or
// transfer, and the answer to a forwarded read. They carry term 0 and skip the term rules.
bool IsTermless(MessageType t) {
  return t == MSG_PROP || t == MSG_READ_INDEX || t == MSG_READ_INDEX_RESP ||
         t == MSG_TRANSFER_LEADER;
}

}  // namespace

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

std::string_view ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "?";
}

Status Config::Validate() const {
  if (!id.valid()) {
    return Status::InvalidArgument("raft config: id must not be 0");
  }
  if (heartbeat_tick <= 0) {
    return Status::InvalidArgument("raft config: heartbeat_tick must be > 0");
  }
  if (election_tick <= heartbeat_tick) {
    return Status::InvalidArgument("raft config: election_tick must be > heartbeat_tick");
  }
  if (storage == nullptr) {
    return Status::InvalidArgument("raft config: storage is null");
  }
  if (max_inflight_msgs == 0) {
    return Status::InvalidArgument("raft config: max_inflight_msgs must be > 0");
  }
  if (startup_vote_guard && !check_quorum) {
    return Status::InvalidArgument("raft config: startup_vote_guard requires check_quorum");
  }
  if (read_only == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return Status::InvalidArgument("raft config: lease-based reads require check_quorum");
  }
  if (lease_ticks < 0 || lease_ticks >= election_tick) {
    return Status::InvalidArgument("raft config: lease_ticks must be in [0, election_tick)");
  }
  return Status::OK();
}

Raft::Raft(const Config& cfg)
    : cfg_(cfg),
      id_(cfg.id),
      log_(cfg.storage, cfg.max_committed_size_per_ready),
      tracker_(cfg.max_inflight_msgs, cfg.max_inflight_bytes),
      // Mix the id in so that nodes given the same seed still draw different timeouts.
      rng_(cfg.random_seed ^ (cfg.id.value() * 0x9e3779b97f4a7c15ULL)) {
  lease_ticks_ = cfg.lease_ticks > 0 ? cfg.lease_ticks : cfg.election_tick - 1;
  startup_lease_ = cfg.read_only == ReadOnlyOption::kLeaseBased || cfg.startup_vote_guard;
}

Result<std::unique_ptr<Raft>> Raft::Create(const Config& cfg) {
  MICEDB_RETURN_IF_ERROR(cfg.Validate());
  MICEDB_ASSIGN_OR_RETURN(LogStorage::InitialState init, cfg.storage->GetInitialState());
  std::unique_ptr<Raft> r(new Raft(cfg));
  const HardState& hs = init.hard_state;
  LogIndex commit(hs.commit());
  if (commit < r->log_.committed() || commit > r->log_.LastIndex()) {
    return Status::Corruption("raft: stored commit index is outside the stored log");
  }
  if (cfg.applied > r->log_.LastIndex()) {
    return Status::InvalidArgument("raft config: applied is past the stored log");
  }
  // Only committed entries are ever applied, so an applied index above the stored commit
  // index (whose write was not synced before a crash) is itself proof of commitment.
  r->log_.CommitTo(std::max(commit, cfg.applied));
  r->log_.AppliedTo(cfg.applied);
  r->tracker_.SetConfState(init.conf_state);
  r->BecomeFollower(Term(hs.term()), NodeId());
  r->vote_ = NodeId(hs.vote());
  return r;
}

HardState Raft::GetHardState() const {
  HardState hs;
  hs.set_term(term_.value());
  hs.set_vote(vote_.value());
  hs.set_commit(log_.committed().value());
  return hs;
}

NodeStatus Raft::GetStatus() const {
  NodeStatus s;
  s.id = id_;
  s.role = role_;
  s.term = term_;
  s.vote = vote_;
  s.leader = lead_;
  s.commit = log_.committed();
  s.applied = log_.applied();
  s.lead_transferee = lead_transferee_;
  s.conf_state = tracker_.GetConfState();
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : tracker_.progress()) {
      s.progress.emplace(id, pr.ToStatus());
    }
    s.pending_conf_index = pending_conf_index_;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Roles

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = NodeId();
  }
  if (role_ == Role::kLeader) {
    DropPendingReads();
  }
  lead_ = NodeId();
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  timeout_now_sent_ = false;
  campaign_when_applied_ = false;
  removing_self_ = false;
  tracker_.ResetVotes();
  pending_conf_index_ = LogIndex(0);
}

void Raft::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  role_ = Role::kFollower;
  lead_ = lead;
}

void Raft::BecomePreCandidate() {
  // §9.6: a pre-candidate keeps its term and vote; only a successful pre-vote bumps the term.
  if (role_ == Role::kLeader) {
    DropPendingReads();
  }
  role_ = Role::kPreCandidate;
  lead_ = NodeId();
  tracker_.ResetVotes();
}

void Raft::BecomeCandidate() {
  Reset(term_ + 1);
  role_ = Role::kCandidate;
  vote_ = id_;
}

void Raft::BecomeLeader() {
  Reset(term_);
  role_ = Role::kLeader;
  lead_ = id_;
  LogIndex last = log_.LastIndex();
  tracker_.ResetProgress(last + 1);
  if (FollowerProgress* self = tracker_.Get(id_)) {
    // A new leader's log was durable when it won (its candidacy was persisted, with every
    // earlier write, before any vote came back), except for a lone voter that elects itself
    // in the same Ready; with async_leader_persist the report for the no-op below covers all.
    if (!cfg_.async_leader_persist) {
      self->MaybeUpdate(last);
    }
    self->BecomeReplicate();
  }
  // Conservatively treat everything not yet applied as possibly holding a conf change.
  pending_conf_index_ = last;
  removing_self_ = UnappliedChangeRemovesSelf();
  round_ticks_.clear();
  // §5.4.2 / §8: commit an entry of the new term at once, so that earlier entries commit with
  // it and ReadIndex knows the commit index is current.
  std::vector<Entry> noop(1);
  AppendAsLeader(std::move(noop));
}

void Raft::ResetRandomizedElectionTimeout() {
  // §5.2: randomized timeouts make split votes rare and let them resolve.
  randomized_election_timeout_ =
      cfg_.election_tick +
      static_cast<int>(rng_.Uniform(static_cast<uint64_t>(cfg_.election_tick)));
}

void Raft::DropPendingReads() {
  for (ReadRequest& r : read_only_.TakeAll()) {
    if (r.from == id_) {
      dropped_reads_.push_back(std::move(r.ctx));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Time

void Raft::Tick() {
  ++ticks_;
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (startup_lease_ && election_elapsed_ >= cfg_.election_tick) {
    startup_lease_ = false;
  }
  if (election_elapsed_ >= cfg_.election_tick) {
    campaign_when_applied_ = false;
  }
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    ResetRandomizedElectionTimeout();
    Hup(false).IgnoreError();  // a refusal just waits for the next timeout
  }
}

bool Raft::AllowForEntries(uint64_t bytes) {
  if (cfg_.slow_entry_bytes_per_tick == 0) return false;
  // An overflow guard: no allowance beyond this many ticks (over ten minutes at 100 ms).
  constexpr uint64_t kMaxTicks = 1 << 13;
  const auto extra = static_cast<int>(std::min(bytes / cfg_.slow_entry_bytes_per_tick, kMaxTicks));
  if (extra == 0 || -extra >= election_elapsed_) return false;  // none, or no longer than now
  election_elapsed_ = -extra;
  return true;
}

std::vector<Message> Raft::AnnounceBigEntries(uint64_t bytes) {
  if (role_ != Role::kLeader || !AllowForEntries(bytes)) return {};
  return HeartbeatsNow(bytes);
}

std::vector<Message> Raft::HeartbeatsNow(uint64_t big_entry_bytes) {
  if (role_ != Role::kLeader) return {};
  const size_t first = msgs_.size();
  BcastHeartbeat(big_entry_bytes);
  std::vector<Message> out(std::make_move_iterator(msgs_.begin() + static_cast<ptrdiff_t>(first)),
                           std::make_move_iterator(msgs_.end()));
  msgs_.resize(first);
  return out;
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      // CheckQuorum (thesis §6.2): without word from a majority for an election timeout, a
      // leader may have been replaced; stepping down stops it serving stale reads and lets
      // its clients look elsewhere.
      if (!tracker_.QuorumActive(id_)) {
        BecomeFollower(term_, NodeId());
        return;
      }
      for (auto& [id, pr] : tracker_.progress()) {
        if (id != id_) {
          pr.recent_active = false;
        }
      }
    }
    // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
    AbortLeaderTransfer();
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    BcastHeartbeat();
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

void Raft::Send(Message m) {
  m.set_from(id_.value());
  if (IsTermless(m.type())) {
    m.set_term(0);
  } else if (m.type() != MSG_VOTE && m.type() != MSG_PRE_VOTE && m.type() != MSG_VOTE_RESP &&
             m.type() != MSG_PRE_VOTE_RESP) {
    // Election messages set their term explicitly (a pre-vote asks about term + 1).
    m.set_term(term_.value());
  }
  msgs_.push_back(std::move(m));
}

bool Raft::InLease() const {
  // A node that heard from a leader less than an election timeout ago refuses to help
  // depose it (thesis §4.2.3). This is also what makes lease reads safe.
  return cfg_.check_quorum && ((lead_.valid() && election_elapsed_ < cfg_.election_tick) ||
                               ticks_ < promise_until_tick_);
}

Status Raft::Step(Message& m) {
  MessageType type = m.type();
  // Requests on behalf of a client are not subject to the term rules.
  bool termless = IsTermless(type);
  if (!termless && Term(m.term()) > term_) {
    if (type == MSG_VOTE || type == MSG_PRE_VOTE) {
      bool transfer = m.context() == kCampaignTransfer;
      if (!transfer && (InLease() || startup_lease_)) {
        return Status::OK();
      }
    }
    // A pre-vote never changes our term, and a granted pre-vote is answered in the term the
    // candidate proposed (handled by StepCandidate).
    bool keeps_term = type == MSG_PRE_VOTE || (type == MSG_PRE_VOTE_RESP && !m.reject());
    if (!keeps_term) {
      // Figure 2, all servers: a higher term makes us a follower, of its sender if it leads.
      bool from_leader = type == MSG_APP || type == MSG_HEARTBEAT || type == MSG_SNAP;
      BecomeFollower(Term(m.term()), from_leader ? NodeId(m.from()) : NodeId());
    }
  } else if (!termless && Term(m.term()) < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) && (type == MSG_APP || type == MSG_HEARTBEAT)) {
      // A stale leader, perhaps cut off while we moved on. With PreVote/CheckQuorum our term
      // may have been bumped by a disruption nobody else saw, so tell the sender our term:
      // it steps down instead of both of us waiting forever.
      Message resp;
      resp.set_type(MSG_APP_RESP);
      resp.set_to(m.from());
      Send(std::move(resp));
    } else if (type == MSG_PRE_VOTE) {
      Message resp;
      resp.set_type(MSG_PRE_VOTE_RESP);
      resp.set_to(m.from());
      resp.set_term(term_.value());
      resp.set_reject(true);
      Send(std::move(resp));
    }
    return Status::OK();  // otherwise ignored: Figure 2 "reply false if term < currentTerm"
  }

  if (type == MSG_VOTE || type == MSG_PRE_VOTE) {
    HandleVoteRequest(m);
    return Status::OK();
  }
  switch (role_) {
    case Role::kLeader:
      return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate:
      return StepCandidate(m);
    case Role::kFollower:
      return StepFollower(m);
  }
  return Status::OK();
}

void Raft::HandleVoteRequest(const Message& m) {
  NodeId from(m.from());
  bool pre = m.type() == MSG_PRE_VOTE;
  // Figure 2, RequestVote receiver: at most one vote per term (a repeated request from the
  // same candidate is answered again), and only if the candidate's log is at least as up to
  // date as ours (§5.4.1). A pre-vote for a later term is answered as if that term had begun.
  bool can_vote =
      vote_ == from || (!vote_.valid() && !lead_.valid()) || (pre && Term(m.term()) > term_);
  // A vote in our own term, which we may have reached without hearing from its leader: still
  // bound by the promise to the last leader we heard (InLease), as in Step for later terms.
  if (can_vote && vote_ != from && m.context() != kCampaignTransfer &&
      (InLease() || startup_lease_)) {
    can_vote = false;
  }
  Message resp;
  resp.set_type(pre ? MSG_PRE_VOTE_RESP : MSG_VOTE_RESP);
  resp.set_to(m.from());
  if (can_vote && log_.IsUpToDate(LogIndex(m.index()), Term(m.log_term()))) {
    resp.set_term(m.term());
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = from;
    }
  } else {
    resp.set_term(term_.value());
    resp.set_reject(true);
    // What we know to be committed, so that a candidate holding the same entry learns it too
    // (StepCandidate). Without it a group can stall: a leader that removed itself hands over
    // to a voter that holds the removal but not yet its commit, that voter loses its first
    // entry as leader in a crash, and the old leader, which holds that entry but no longer
    // counts itself a voter, neither campaigns nor votes for the shorter log.
    LogIndex c = log_.committed();
    resp.set_commit(c.value());
    resp.set_log_term(log_.TermOrZero(c).value());
  }
  Send(std::move(resp));
}

// ---------------------------------------------------------------------------------------------
// Elections

bool Raft::HasUnappliedConfChange() const {
  if (log_.committed() <= log_.applied()) {
    return false;
  }
  Result<std::vector<Entry>> ents =
      log_.Slice(log_.applied() + 1, log_.committed() + 1, std::numeric_limits<uint64_t>::max());
  if (!ents.ok()) {
    return true;  // cannot tell: be careful
  }
  for (const Entry& e : *ents) {
    if (e.type() == ENTRY_CONF_CHANGE) {
      return true;
    }
  }
  return false;
}

bool Raft::RemovesSelf(const ConfChange& cc) const {
  return NodeId(cc.node_id()) == id_ && (cc.type() == REMOVE_NODE || cc.type() == ADD_LEARNER);
}

bool Raft::UnappliedChangeRemovesSelf() const {
  if (log_.applied() >= log_.LastIndex()) {
    return false;
  }
  Result<std::vector<Entry>> ents =
      log_.Slice(log_.applied() + 1, log_.LastIndex() + 1, std::numeric_limits<uint64_t>::max());
  if (!ents.ok()) {
    return false;
  }
  for (const Entry& e : *ents) {
    ConfChange cc;
    if (e.type() == ENTRY_CONF_CHANGE && cc.ParseFromString(e.data()) && RemovesSelf(cc)) {
      return true;
    }
  }
  return false;
}

Status Raft::Campaign() { return Hup(false); }

void Raft::OnApplied() {
  if (campaign_when_applied_ && role_ != Role::kLeader && !HasUnappliedConfChange()) {
    campaign_when_applied_ = false;
    if (Promotable()) {
      StartElection(/*pre_vote=*/false, /*transfer=*/true);
    }
  }
}

Status Raft::Hup(bool transfer) {
  if (role_ == Role::kLeader) {
    return Status::OK();
  }
  if (!Promotable()) {
    return Status::NotSupported("raft: this node is not a voter");
  }
  // The membership may be about to change under us; the election would count the wrong voters.
  if (HasUnappliedConfChange()) {
    return Status::Unavailable("raft: a committed membership change is not applied yet");
  }
  StartElection(cfg_.pre_vote && !transfer, transfer);
  return Status::OK();
}

void Raft::StartElection(bool pre_vote, bool transfer) {
  Term vote_term;
  MessageType type;
  if (pre_vote) {
    BecomePreCandidate();
    vote_term = term_ + 1;
    type = MSG_PRE_VOTE;
  } else {
    BecomeCandidate();
    vote_term = term_;
    type = MSG_VOTE;
  }
  tracker_.RecordVote(id_, true);
  if (tracker_.TallyVotes() == VoteResult::kWon) {
    // A group of one wins at once.
    if (pre_vote) {
      StartElection(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  LogIndex last = log_.LastIndex();
  Term last_term = log_.LastTerm();
  for (NodeId v : tracker_.voters()) {
    if (v == id_) {
      continue;
    }
    Message m;
    m.set_type(type);
    m.set_to(v.value());
    m.set_term(vote_term.value());
    m.set_index(last.value());
    m.set_log_term(last_term.value());
    if (transfer) {
      m.set_context(std::string(kCampaignTransfer));
    }
    Send(std::move(m));
  }
}

}  // namespace micedb::raft
