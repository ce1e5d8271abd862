// Followers and candidates: the AppendEntries / InstallSnapshot receiver rules and vote
// counting.
#include <algorithm>

#include "raft/raft.h"

namespace micedb::raft {

void Raft::HeardFromLeader(NodeId leader) {
  // A big entry's allowance outlasts the messages that follow it (the leader's commit
  // announcement comes before its own apply of the entry).
  election_elapsed_ = std::min(election_elapsed_, 0);
  promise_until_tick_ = ticks_ + static_cast<uint64_t>(cfg_.election_tick);
  lead_ = leader;
}

Status Raft::StepFollower(Message& m) {
  switch (m.type()) {
    case MSG_PROP:
      // Forwarded proposals go to the leader only; a follower that got one drops it rather
      // than bouncing it around.
      return Status::OK();
    case MSG_APP: {
      HeardFromLeader(NodeId(m.from()));
      uint64_t bytes = 0;
      for (const Entry& e : m.entries()) bytes += e.data().size();
      AllowForEntries(bytes);
      HandleAppend(m);
      return Status::OK();
    }
    case MSG_HEARTBEAT:
      HeardFromLeader(NodeId(m.from()));
      AllowForEntries(m.big_entry_bytes());
      HandleHeartbeat(m);
      return Status::OK();
    case MSG_SNAP:
      HeardFromLeader(NodeId(m.from()));
      HandleSnapshot(m);
      return Status::OK();
    case MSG_TIMEOUT_NOW:
      // Leadership transfer: campaign now, skipping the pre-vote, with a context that makes
      // voters ignore their leader lease.
      if (Promotable() && !Hup(true).ok()) {
        campaign_when_applied_ = true;
      }
      return Status::OK();
    case MSG_READ_INDEX_RESP:
      read_states_.push_back(ReadState{LogIndex(m.index()), m.context()});
      return Status::OK();
    default:
      return Status::OK();
  }
}

Status Raft::StepCandidate(Message& m) {
  MessageType expected = role_ == Role::kPreCandidate ? MSG_PRE_VOTE_RESP : MSG_VOTE_RESP;
  switch (m.type()) {
    case MSG_APP:
    case MSG_HEARTBEAT:
    case MSG_SNAP:
      // §5.2: a leader of our term exists (its term is not lower, or we would not get here).
      BecomeFollower(Term(m.term()), NodeId(m.from()));
      return StepFollower(m);
    case MSG_READ_INDEX_RESP:
      read_states_.push_back(ReadState{LogIndex(m.index()), m.context()});
      return Status::OK();
    default:
      break;
  }
  if (m.type() != expected) {
    return Status::OK();
  }
  // A refusal carries the voter's commit index and its entry's term (HandleVoteRequest).
  // Committed entries are never replaced, and an entry of the same index and term means the
  // same log up to it (Log Matching): if we hold that entry, it and all before it are
  // committed. Safe from any voter and any term, so even a stale refusal teaches it.
  if (m.reject() && log_.MatchTerm(LogIndex(m.commit()), Term(m.log_term()))) {
    log_.CommitTo(LogIndex(m.commit()));
  }
  // A pre-vote is answered in term_ + 1; a vote in term_. Anything else is stale.
  Term want = role_ == Role::kPreCandidate ? term_ + 1 : term_;
  if (Term(m.term()) != want) {
    return Status::OK();
  }
  tracker_.RecordVote(NodeId(m.from()), !m.reject());
  switch (tracker_.TallyVotes()) {
    case VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        StartElection(/*pre_vote=*/false, /*transfer=*/false);
      } else {
        BecomeLeader();
        BcastAppend();
      }
      break;
    case VoteResult::kLost:
      BecomeFollower(term_, NodeId());
      break;
    case VoteResult::kPending:
      break;
  }
  return Status::OK();
}

void Raft::HandleAppend(Message& m) {
  Message resp;
  resp.set_type(MSG_APP_RESP);
  resp.set_to(m.from());
  LogIndex prev(m.index());
  if (prev < log_.committed()) {
    // Everything up to our commit index is already known to match (Log Matching): tell the
    // leader how far we are instead of re-checking.
    resp.set_index(log_.committed().value());
    Send(std::move(resp));
    return;
  }
  std::vector<Entry> ents;
  ents.reserve(static_cast<size_t>(m.entries_size()));
  for (Entry& e : *m.mutable_entries()) {
    ents.push_back(std::move(e));
  }
  if (auto last =
          log_.MaybeAppend(prev, Term(m.log_term()), LogIndex(m.commit()), std::move(ents))) {
    resp.set_index(last->value());
    Send(std::move(resp));
    return;
  }
  // Figure 2 rule 2: reject. Point the leader at the last index where our log could still
  // match: at most our last index, and skipping entries whose term is above prev's term, as
  // those cannot match the leader's entry there.
  LogIndex hint = std::min(prev, log_.LastIndex());
  auto [hint_index, hint_term] = log_.FindConflictByTerm(hint, Term(m.log_term()));
  resp.set_index(prev.value());
  resp.set_reject(true);
  resp.set_reject_hint(hint_index.value());
  resp.set_reject_term(hint_term.value());
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  // The leader never sends a commit index above what it knows we hold.
  log_.CommitTo(std::min(LogIndex(m.commit()), log_.LastIndex()));
  Message resp;
  resp.set_type(MSG_HEARTBEAT_RESP);
  resp.set_to(m.from());
  resp.set_index(m.index());  // the round, for ReadIndex and the lease
  Send(std::move(resp));
}

void Raft::HandleSnapshot(Message& m) {
  Message resp;
  resp.set_type(MSG_APP_RESP);
  resp.set_to(m.from());
  if (Restore(m.mutable_snapshot())) {
    resp.set_index(log_.LastIndex().value());
  } else {
    resp.set_index(log_.committed().value());
  }
  Send(std::move(resp));
}

bool Raft::Restore(Snapshot* snapshot) {
  const Snapshot& snap = *snapshot;
  LogIndex index(snap.metadata().index());
  Term term(snap.metadata().term());
  if (index <= log_.committed()) {
    return false;
  }
  if (log_.MatchTerm(index, term)) {
    // We already hold the entry the snapshot ends with, so everything before it too: just
    // advance the commit index and keep the log.
    log_.CommitTo(index);
    return false;
  }
  tracker_.SetConfState(snap.metadata().conf_state());
  log_.Restore(std::move(*snapshot));
  return true;
}

}  // namespace micedb::raft
