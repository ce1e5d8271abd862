// Paper Figure 2, the rules every server follows when it receives AppendEntries and
// RequestVote, checked one by one on a single node fed by hand.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

Message App(uint64_t term, uint64_t prev_index, uint64_t prev_term, std::vector<Entry> ents,
            uint64_t commit) {
  Message m = MakeMsg(MSG_APP, 2, 1, term);
  m.set_index(prev_index);
  m.set_log_term(prev_term);
  m.set_commit(commit);
  for (Entry& e : ents) {
    *m.add_entries() = std::move(e);
  }
  return m;
}

HardState HS(uint64_t term, uint64_t vote = 0, uint64_t commit = 0) {
  HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

// Node 1 with log [1:1 2:1 3:2] at term 2.
SoloNode MakeFollower() {
  return SoloNode(1, {1, 2, 3}, nullptr, {MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 2)},
                  HS(2));
}

// AppendEntries rule 1: reply false if term < currentTerm.
TEST(AppendEntriesReceiver, RejectsStaleTerm) {
  SoloNode f = MakeFollower();
  auto out = f.Feed(App(1, 2, 1, {MakeEntry(3, 1)}, 0));
  // The stale leader is told our term so it steps down (with PreVote/CheckQuorum on).
  Message resp = Only(out, MSG_APP_RESP);
  EXPECT_EQ(resp.term(), 2u);
  EXPECT_EQ(f.raft().log().LastIndex(), I(3)) << "nothing appended";
}

// Rule 2: reply false if the log has no entry at prevLogIndex whose term matches prevLogTerm.
TEST(AppendEntriesReceiver, ConsistencyCheckRejectsMismatch) {
  SoloNode f = MakeFollower();
  Message resp = Only(f.Feed(App(2, 3, 1, {MakeEntry(4, 2)}, 0)), MSG_APP_RESP);
  EXPECT_TRUE(resp.reject());
  EXPECT_EQ(resp.index(), 3u);
  // Fast backtracking: our entry with term <= 1 at or below 3 is index 2, term 1.
  EXPECT_EQ(resp.reject_hint(), 2u);
  EXPECT_EQ(resp.reject_term(), 1u);

  resp = Only(f.Feed(App(2, 7, 2, {MakeEntry(8, 2)}, 0)), MSG_APP_RESP);
  EXPECT_TRUE(resp.reject()) << "missing prevLogIndex";
  EXPECT_EQ(resp.reject_hint(), 3u) << "hint is capped at our last index";
  EXPECT_EQ(f.raft().log().LastIndex(), I(3));
}

TEST(AppendEntriesReceiver, AcceptsMatchingPrev) {
  SoloNode f = MakeFollower();
  Message resp = Only(f.Feed(App(2, 3, 2, {MakeEntry(4, 2), MakeEntry(5, 2)}, 0)), MSG_APP_RESP);
  EXPECT_FALSE(resp.reject());
  EXPECT_EQ(resp.index(), 5u);
  EXPECT_EQ(f.storage().LastIndex(), I(5)) << "persisted through the Ready";
  EXPECT_EQ(f.raft().leader(), N(2));
}

// Rule 3: an existing entry that conflicts with a new one (same index, different terms) is
// deleted with all that follow it. Rule 4: new entries not already in the log are appended.
TEST(AppendEntriesReceiver, TruncatesConflictingEntries) {
  SoloNode f = MakeFollower();
  Message resp = Only(f.Feed(App(3, 1, 1, {MakeEntry(2, 3)}, 0)), MSG_APP_RESP);
  EXPECT_FALSE(resp.reject());
  EXPECT_EQ(resp.index(), 2u);
  EXPECT_EQ(f.raft().log().LastIndex(), I(2));
  EXPECT_EQ(f.raft().log().TermOrZero(I(2)), T(3));
  EXPECT_EQ(f.storage().LastIndex(), I(2)) << "storage truncated too";
  EXPECT_EQ(*f.storage().TermAt(I(2)), T(3));
}

TEST(AppendEntriesReceiver, DoesNotTruncateOnStaleDuplicate) {
  SoloNode f = MakeFollower();
  // An old, delayed message for entries we already hold must not cut the log short.
  Message resp = Only(f.Feed(App(2, 1, 1, {MakeEntry(2, 1)}, 0)), MSG_APP_RESP);
  EXPECT_FALSE(resp.reject());
  EXPECT_EQ(f.raft().log().LastIndex(), I(3));
}

// Rule 5: if leaderCommit > commitIndex, commitIndex = min(leaderCommit, index of last new).
TEST(AppendEntriesReceiver, CommitIsMinOfLeaderCommitAndLastNew) {
  SoloNode f = MakeFollower();
  f.Feed(App(2, 1, 1, {MakeEntry(2, 1)}, 10));
  EXPECT_EQ(f.raft().log().committed(), I(2)) << "not past the last entry this message vouches for";
  f.Feed(App(2, 3, 2, {}, 3));
  EXPECT_EQ(f.raft().log().committed(), I(3));
  EXPECT_EQ(f.applied().size(), 3u);
}

TEST(AppendEntriesReceiver, BelowCommitAnswersWithCommit) {
  SoloNode f = MakeFollower();
  f.Feed(App(2, 3, 2, {}, 3));
  Message resp = Only(f.Feed(App(2, 1, 1, {MakeEntry(2, 1)}, 3)), MSG_APP_RESP);
  EXPECT_FALSE(resp.reject());
  EXPECT_EQ(resp.index(), 3u);
}

// All servers: a higher term in any RPC makes us a follower in that term.
TEST(AllServers, HigherTermConvertsToFollower) {
  SoloNode n(1, {1}, [](Config& c) { c.pre_vote = false; });
  ASSERT_TRUE(n.node().Campaign().ok());
  n.Drain();
  ASSERT_EQ(n.raft().role(), Role::kLeader);
  Term t = n.raft().term();
  n.Feed(App(t.value() + 5, 0, 0, {}, 0));
  EXPECT_EQ(n.raft().role(), Role::kFollower);
  EXPECT_EQ(n.raft().term(), t + 5);
  EXPECT_EQ(n.raft().leader(), N(2));
}

Message Vote(uint64_t from, uint64_t term, uint64_t last_index, uint64_t last_term,
             MessageType type = MSG_VOTE) {
  Message m = MakeMsg(type, from, 1, term);
  m.set_index(last_index);
  m.set_log_term(last_term);
  return m;
}

SoloNode MakeVoter() {
  return SoloNode(
      1, {1, 2, 3}, [](Config& c) { c.check_quorum = false; }, {MakeEntry(1, 1), MakeEntry(2, 2)},
      HS(2));
}

// RequestVote rule 1: reply false if term < currentTerm.
TEST(RequestVoteReceiver, RejectsStaleTerm) {
  SoloNode v = MakeVoter();
  auto out = v.Feed(Vote(2, 1, 5, 1));
  EXPECT_EQ(CountType(out, MSG_VOTE_RESP), 0u) << "stale requests are ignored";
  EXPECT_FALSE(v.raft().vote().valid());
}

// Rule 2: grant if votedFor is null or candidateId, and the candidate's log is at least as up
// to date as ours (§5.4.1).
TEST(RequestVoteReceiver, GrantsUpToDateCandidate) {
  SoloNode v = MakeVoter();
  Message resp = Only(v.Feed(Vote(2, 3, 2, 2)), MSG_VOTE_RESP);
  EXPECT_FALSE(resp.reject());
  EXPECT_EQ(resp.term(), 3u);
  EXPECT_EQ(v.raft().vote(), N(2));
  EXPECT_EQ(v.storage().hard_state().vote(), 2u) << "the vote is persisted before it is sent";
}

TEST(RequestVoteReceiver, RejectsOlderLastTerm) {
  SoloNode v = MakeVoter();
  Message resp = Only(v.Feed(Vote(2, 3, 10, 1)), MSG_VOTE_RESP);
  EXPECT_TRUE(resp.reject()) << "longer log but older last term";
  EXPECT_EQ(v.raft().term(), T(3)) << "the higher term is still adopted";
}

TEST(RequestVoteReceiver, RejectsShorterLogSameTerm) {
  SoloNode v = MakeVoter();
  EXPECT_TRUE(Only(v.Feed(Vote(2, 3, 1, 2)), MSG_VOTE_RESP).reject());
}

TEST(RequestVoteReceiver, OneVotePerTerm) {
  SoloNode v = MakeVoter();
  EXPECT_FALSE(Only(v.Feed(Vote(2, 3, 2, 2)), MSG_VOTE_RESP).reject());
  EXPECT_TRUE(Only(v.Feed(Vote(3, 3, 5, 2)), MSG_VOTE_RESP).reject())
      << "already voted for 2 in term 3";
  EXPECT_FALSE(Only(v.Feed(Vote(2, 3, 2, 2)), MSG_VOTE_RESP).reject())
      << "a retransmitted request from the same candidate is granted again";
  EXPECT_FALSE(Only(v.Feed(Vote(3, 4, 5, 2)), MSG_VOTE_RESP).reject()) << "new term, new vote";
}

TEST(RequestVoteReceiver, VoteSurvivesRestart) {
  SoloNode v = MakeVoter();
  v.Feed(Vote(2, 3, 2, 2));
  // Rebuild from the same storage: the vote must come back.
  Config c;
  c.id = N(1);
  c.storage = &v.storage();
  c.check_quorum = false;
  auto r = RawNode::Create(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->GetStatus().vote, N(2));
  EXPECT_EQ((*r)->GetStatus().term, T(3));
}

TEST(StepValidation, RejectsMalformedMessages) {
  SoloNode v = MakeVoter();
  EXPECT_FALSE(v.node().Step(MakeMsg(MSG_UNKNOWN, 2, 1, 3)).ok());
  EXPECT_FALSE(v.node().Step(MakeMsg(MSG_APP, 2, 9, 3)).ok()) << "not for us";
  EXPECT_FALSE(v.node().Step(MakeMsg(MSG_APP, 0, 1, 3)).ok()) << "no sender";
  Message bad = MakeMsg(MSG_APP, 2, 1, 3);
  bad.set_type(static_cast<MessageType>(99));
  EXPECT_FALSE(v.node().Step(bad).ok());
}

TEST(StepValidation, RejectsMalformedAppend) {
  SoloNode v = MakeVoter();
  Message gap = App(3, 2, 2, {MakeEntry(3, 3), MakeEntry(5, 3)}, 0);
  gap.set_from(2);
  EXPECT_TRUE(v.node().Step(gap).IsInvalidArgument());
  Message wrong_start = App(3, 2, 2, {MakeEntry(4, 3)}, 0);
  EXPECT_TRUE(v.node().Step(wrong_start).IsInvalidArgument());
  Message future_term = App(3, 2, 2, {MakeEntry(3, 9)}, 0);
  EXPECT_TRUE(v.node().Step(future_term).IsInvalidArgument());
  Message backwards = App(3, 2, 2, {MakeEntry(3, 3), MakeEntry(4, 2)}, 0);
  EXPECT_TRUE(v.node().Step(backwards).IsInvalidArgument());
  EXPECT_EQ(v.raft().log().LastIndex(), I(2)) << "nothing appended";
}

}  // namespace
}  // namespace micedb::raft
