#include "raft/raw_node.h"

#include <utility>

#include "raft/raft.h"

namespace micedb::raft {

namespace {
bool SameHardState(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}
}  // namespace

RawNode::RawNode(std::unique_ptr<Raft> raft) : raft_(std::move(raft)) {
  prev_soft_ = raft_->GetSoftState();
  prev_hard_ = raft_->GetHardState();
}

RawNode::~RawNode() = default;

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& cfg) {
  MICEDB_ASSIGN_OR_RETURN(std::unique_ptr<Raft> r, Raft::Create(cfg));
  return std::unique_ptr<RawNode>(new RawNode(std::move(r)));
}

void RawNode::Tick() { raft_->Tick(); }

Status RawNode::Campaign() { return raft_->Campaign(); }

Status RawNode::Propose(std::string data) {
  std::vector<std::string> v;
  v.push_back(std::move(data));
  return raft_->Propose(std::move(v), /*allow_forward=*/true).status();
}

Status RawNode::ProposeBatch(std::vector<std::string> data) {
  if (data.empty()) {
    return Status::OK();
  }
  return raft_->Propose(std::move(data), /*allow_forward=*/true).status();
}

Result<std::pair<Term, LogIndex>> RawNode::ProposeWithIndex(std::string data) {
  std::vector<std::string> v;
  v.push_back(std::move(data));
  return raft_->Propose(std::move(v), /*allow_forward=*/false);
}

Result<std::pair<Term, LogIndex>> RawNode::ProposeBatchWithIndex(std::vector<std::string> data) {
  if (data.empty()) {
    return Status::InvalidArgument("raft: empty proposal batch");
  }
  return raft_->Propose(std::move(data), /*allow_forward=*/false);
}

std::vector<Message> RawNode::AnnounceBigEntries(uint64_t bytes) {
  return raft_->AnnounceBigEntries(bytes);
}

std::vector<Message> RawNode::HeartbeatNow() { return raft_->HeartbeatsNow(); }

Status RawNode::ProposeConfChange(const ConfChange& cc) {
  return raft_->ProposeConfChange(cc).status();
}

Result<std::pair<Term, LogIndex>> RawNode::ProposeConfChangeWithIndex(const ConfChange& cc) {
  return raft_->ProposeConfChange(cc);
}

ConfState RawNode::ApplyConfChange(const ConfChange& cc) { return raft_->ApplyConfChange(cc); }

Status RawNode::Step(const Message& m) {
  MICEDB_RETURN_IF_ERROR(Validate(m));
  Message copy = m;
  return raft_->Step(copy);
}

Status RawNode::Step(Message&& m) {
  MICEDB_RETURN_IF_ERROR(Validate(m));
  return raft_->Step(m);
}

Status RawNode::Validate(const Message& m) const {
  if (m.type() == MSG_UNKNOWN || !MessageType_IsValid(m.type())) {
    return Status::InvalidArgument("raft: message of unknown type");
  }
  if (m.to() != raft_->id().value()) {
    return Status::InvalidArgument("raft: message addressed to another node");
  }
  if (m.from() == 0) {
    return Status::InvalidArgument("raft: message without a sender");
  }
  if (m.from() == m.to()) {
    return Status::InvalidArgument("raft: message from this node to itself");
  }
  if (m.type() == MSG_APP) {
    // The log code relies on these; a peer that breaks them is corrupt, not a reason to crash.
    uint64_t want = m.index() + 1;
    uint64_t prev_term = m.log_term();
    for (const Entry& e : m.entries()) {
      if (e.index() != want++) {
        return Status::InvalidArgument("raft: MSG_APP entries are not contiguous after index");
      }
      if (e.term() < prev_term || e.term() > m.term()) {
        return Status::InvalidArgument("raft: MSG_APP entry terms out of order");
      }
      prev_term = e.term();
    }
    if (m.log_term() > m.term()) {
      return Status::InvalidArgument("raft: MSG_APP log_term above the message term");
    }
  }
  return Status::OK();
}

void RawNode::ReadIndex(std::string ctx) { raft_->ReadIndex(std::move(ctx)); }

void RawNode::TransferLeader(NodeId target) { raft_->TransferLeader(target); }

bool RawNode::HasReady() const {
  const RaftLog& log = std::as_const(*raft_).log();
  return !(raft_->GetSoftState() == prev_soft_) ||
         !SameHardState(raft_->GetHardState(), prev_hard_) || raft_->HasMessages() ||
         raft_->HasReadStates() || log.HasNextUnstableSnapshot() || log.HasNextUnstableEntries() ||
         log.HasNextCommittedEntries();
}

Ready RawNode::GetReady() {
  Ready rd;
  RaftLog& log = raft_->log();
  SoftState ss = raft_->GetSoftState();
  if (!(ss == prev_soft_)) {
    rd.soft_state = ss;
    prev_soft_ = ss;
  }
  HardState hs = raft_->GetHardState();
  bool term_or_vote_changed = hs.term() != prev_hard_.term() || hs.vote() != prev_hard_.vote();
  if (!SameHardState(hs, prev_hard_)) {
    rd.hard_state = hs;
    prev_hard_ = hs;
  }
  if (log.HasNextUnstableSnapshot()) {
    rd.snapshot = *log.UnstableSnapshot();
  }
  if (log.HasNextUnstableEntries()) {
    rd.entries = log.NextUnstableEntries();
  }
  rd.committed_entries = log.NextCommittedEntries();
  rd.messages = raft_->TakeMessages();
  rd.read_states = raft_->TakeReadStates();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() || term_or_vote_changed;
  // Every message of a leader whose term and vote are already durable is a leader's message
  // of this term (MSG_APP, heartbeats, read answers, ...) or a refusal: none vouches for this
  // Ready's writes. A node becomes leader only after the Ready that persisted its candidacy
  // (term and vote) was handled, so no follower or candidate message of the same Ready can be
  // here either. But when the commit index already covers one of this Ready's entries, the
  // leader's own copy was the deciding vote (a group with one voter): the messages carry that
  // commit index to learners (and answer reads with it), so they must wait for the write.
  const bool commits_unwritten =
      !rd.entries.empty() && log.committed() >= LogIndex(rd.entries.front().index());
  rd.send_before_persist = raft_->role() == Role::kLeader && !term_or_vote_changed &&
                           !rd.snapshot.has_value() && !commits_unwritten;
  handed_out_ = HandedOut();
  if (rd.snapshot) {
    handed_out_.snapshot = LogIndex(rd.snapshot->metadata().index());
  }
  if (!rd.entries.empty()) {
    const Entry& last = rd.entries.back();
    handed_out_.last_entry = std::make_pair(LogIndex(last.index()), Term(last.term()));
  }
  LogIndex applying = log.applying();
  if (!rd.committed_entries.empty()) {
    applying = LogIndex(rd.committed_entries.back().index());
    handed_out_.last_committed = applying;
  }
  log.AcceptReady(applying);
  return rd;
}

void RawNode::Advance(const Ready& /*rd*/) {
  RaftLog& log = raft_->log();
  HandedOut h = std::exchange(handed_out_, HandedOut());
  if (h.snapshot) {
    log.StableSnapTo(*h.snapshot);
    log.AppliedTo(*h.snapshot);
  }
  if (h.last_entry) {
    log.StableTo(h.last_entry->first, h.last_entry->second);
  }
  if (h.last_committed) {
    log.AppliedTo(*h.last_committed);
  }
  raft_->OnApplied();
}

void RawNode::ReportUnreachable(NodeId id) { raft_->ReportUnreachable(id); }

void RawNode::ReportPersisted(LogIndex index, Term term) { raft_->ReportPersisted(index, term); }

void RawNode::ReportSnapshot(NodeId id, SnapshotStatus status) {
  raft_->ReportSnapshot(id, status);
}

NodeStatus RawNode::GetStatus() const { return raft_->GetStatus(); }

bool RawNode::Quiet() const { return raft_->Quiet(); }

void RawNode::SendCommitNow() { raft_->SendCommitNow(); }

void RawNode::Woken() { raft_->Woken(); }

std::optional<uint64_t> RawNode::LeaseStart() const { return raft_->LeaseStart(); }

uint64_t RawNode::Ticks() const { return raft_->ticks(); }

Term RawNode::CurrentTerm() const { return raft_->term(); }

LogIndex RawNode::Committed() const { return raft_->log().committed(); }

std::vector<std::string> RawNode::TakeDroppedReads() { return raft_->TakeDroppedReads(); }

}  // namespace micedb::raft
