// The Ready contract: what GetReady hands out, that each piece is handed out once, and how
// Advance and a restart pick up from storage.
#include "raft/raw_node.h"

#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

TEST(RawNode, CreateValidatesConfig) {
  Config cfg;
  EXPECT_TRUE(RawNode::Create(cfg).status().IsInvalidArgument()) << "no id, no storage";
  MemoryStorage s;
  cfg.id = N(1);
  cfg.storage = &s;
  cfg.heartbeat_tick = 10;
  EXPECT_TRUE(RawNode::Create(cfg).status().IsInvalidArgument());
}

TEST(RawNode, CreateRejectsInconsistentStorage) {
  MemoryStorage s;
  HardState hs;
  hs.set_commit(5);  // past the (empty) log
  s.SetHardState(hs);
  Config cfg;
  cfg.id = N(1);
  cfg.storage = &s;
  EXPECT_TRUE(RawNode::Create(cfg).status().IsCorruption());
}

TEST(RawNode, FreshNodeHasNothingToDo) {
  SoloNode n(1, {1, 2, 3});
  EXPECT_FALSE(n.node().HasReady());
}

TEST(RawNode, SingleNodeCampaignReady) {
  SoloNode n(1, {1});
  ASSERT_TRUE(n.node().Campaign().ok());
  ASSERT_TRUE(n.node().HasReady());
  Ready rd = n.node().GetReady();
  ASSERT_TRUE(rd.soft_state);
  EXPECT_EQ(rd.soft_state->role, Role::kLeader);
  EXPECT_EQ(rd.soft_state->leader, N(1));
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->term(), 1u);
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_EQ(rd.hard_state->commit(), 1u);
  ASSERT_EQ(rd.entries.size(), 1u);
  ASSERT_EQ(rd.committed_entries.size(), 1u) << "persist, then apply, in the same Ready";
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(rd.messages.empty());
  EXPECT_FALSE(n.node().HasReady()) << "each piece is handed out once";
  ASSERT_TRUE(n.storage().Append(rd.entries).ok());
  n.storage().SetHardState(*rd.hard_state);
  n.node().Advance(rd);
  EXPECT_FALSE(n.node().HasReady());
  EXPECT_EQ(n.node().GetStatus().applied, I(1));
}

TEST(RawNode, HardStateOnlyWhenChanged) {
  SoloNode n(1, {1});
  ASSERT_TRUE(n.node().Campaign().ok());
  n.Drain();
  ASSERT_TRUE(n.node().Propose("a").ok());
  Ready rd = n.node().GetReady();
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->commit(), 2u);
  EXPECT_EQ(rd.entries.size(), 1u);
  n.storage().Append(rd.entries).IgnoreError();
  n.node().Advance(rd);
  n.node().Tick();
  EXPECT_FALSE(n.node().HasReady()) << "a tick of a lone leader changes nothing durable";
}

TEST(RawNode, CommitOnlyChangeNeedsNoSync) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.HandleReady(N(1));
  c.DeliverOnce();  // MSG_APP to followers
  c.HandleReady(N(2));
  c.HandleReady(N(3));
  c.DeliverOnce();  // acks to the leader: commit advances
  Ready rd = c.raw(1).GetReady();
  ASSERT_TRUE(rd.hard_state);
  EXPECT_TRUE(rd.entries.empty());
  EXPECT_FALSE(rd.must_sync);
  c.raw(1).Advance(rd);
}

TEST(RawNode, RestartRedeliversOnlyUnappliedCommittedEntries) {
  MemoryStorage s;
  s.SetConfState(MakeConfState({1}));
  std::vector<Entry> ents;
  for (uint64_t i = 1; i <= 5; ++i) {
    ents.push_back(MakeEntry(i, 1, "e" + std::to_string(i)));
  }
  ASSERT_TRUE(s.Append(ents).ok());
  HardState hs;
  hs.set_term(1);
  hs.set_commit(5);
  s.SetHardState(hs);
  Config cfg;
  cfg.id = N(1);
  cfg.storage = &s;
  cfg.applied = I(3);
  auto n = RawNode::Create(cfg);
  ASSERT_TRUE(n.ok());
  Ready rd = (*n)->GetReady();
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_EQ(rd.committed_entries[0].index(), 4u);
  EXPECT_FALSE(rd.hard_state) << "unchanged from storage";
  cfg.applied = I(9);
  EXPECT_TRUE(RawNode::Create(cfg).status().IsInvalidArgument()) << "applied past the log";
}

TEST(RawNode, AppliedAboveStoredCommitCountsAsCommitted) {
  // The commit index is written without a sync; after a crash the state machine may be ahead.
  MemoryStorage s;
  s.SetConfState(MakeConfState({1, 2}));
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 1)}).ok());
  HardState hs;
  hs.set_term(1);
  hs.set_commit(1);
  s.SetHardState(hs);
  Config cfg;
  cfg.id = N(1);
  cfg.storage = &s;
  cfg.applied = I(2);
  auto n = RawNode::Create(cfg);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)->GetStatus().commit, I(2));
  EXPECT_FALSE((*n)->HasReady() && !(*n)->GetReady().committed_entries.empty());
}

TEST(RawNode, CommittedEntriesBoundedPerReady) {
  MemoryStorage s;
  s.SetConfState(MakeConfState({1}));
  std::vector<Entry> ents;
  for (uint64_t i = 1; i <= 10; ++i) {
    ents.push_back(MakeEntry(i, 1, std::string(100, 'x')));
  }
  ASSERT_TRUE(s.Append(ents).ok());
  HardState hs;
  hs.set_term(1);
  hs.set_commit(10);
  s.SetHardState(hs);
  Config cfg;
  cfg.id = N(1);
  cfg.storage = &s;
  cfg.max_committed_size_per_ready = 350;
  auto n = RawNode::Create(cfg);
  ASSERT_TRUE(n.ok());
  size_t readies = 0, total = 0;
  while ((*n)->HasReady()) {
    Ready rd = (*n)->GetReady();
    EXPECT_LE(rd.committed_entries.size(), 3u);
    total += rd.committed_entries.size();
    (*n)->Advance(rd);
    ++readies;
  }
  EXPECT_EQ(total, 10u);
  EXPECT_GE(readies, 4u);
}

TEST(RawNode, StatusShowsProgressOnLeaderOnly) {
  TestCluster c(3);
  c.Elect(1);
  NodeStatus s = c.raw(1).GetStatus();
  EXPECT_EQ(s.role, Role::kLeader);
  EXPECT_EQ(s.progress.size(), 3u);
  EXPECT_EQ(s.progress.at(N(2)).match, s.commit);
  EXPECT_TRUE(c.raw(2).GetStatus().progress.empty());
  EXPECT_EQ(c.raw(2).GetStatus().leader, N(1));
}

TEST(RawNode, MessagesFromTheSameReadyFollowPersistence) {
  // A vote is persisted (in the Ready's hard state) in the same Ready that carries the vote
  // response; must_sync says to sync before sending.
  SoloNode v(1, {1, 2, 3}, [](Config& c) { c.check_quorum = false; });
  Message m = MakeMsg(MSG_VOTE, 2, 1, 1);
  ASSERT_TRUE(v.node().Step(m).ok());
  Ready rd = v.node().GetReady();
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->vote(), 2u);
  EXPECT_EQ(rd.messages.size(), 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_FALSE(rd.send_before_persist) << "a vote must be durable before it is sent";
  v.node().Advance(rd);
}

TEST(RawNode, OnlyALeadersReadyMaySendBeforePersisting) {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  ASSERT_TRUE(c.raw(1).Campaign().ok());
  Ready rd = c.raw(1).GetReady();
  EXPECT_FALSE(rd.send_before_persist) << "the candidate's term and vote go first";
  c.raw(1).Advance(rd);

  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  rd = c.raw(1).GetReady();
  EXPECT_EQ(rd.entries.size(), 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(rd.send_before_persist);
  // The followers' answers to those appends are not stepped before the leader persisted, so
  // the leader's own (not yet durable) copy cannot make the entry commit in this Ready.
  EXPECT_TRUE(rd.committed_entries.empty());
  EXPECT_TRUE(c.node(1).storage->Append(rd.entries).ok());
  for (const Message& m : rd.messages) EXPECT_TRUE(c.raw(m.to()).Step(m).ok());
  c.raw(1).Advance(rd);
  c.Stabilize();

  // A follower acknowledges entries: its answer vouches for what it persists.
  ASSERT_TRUE(c.raw(1).Propose("y").ok());
  c.HandleReady(N(1));
  c.DeliverOnce();
  rd = c.raw(2).GetReady();
  EXPECT_EQ(rd.entries.size(), 1u);
  EXPECT_FALSE(rd.send_before_persist);
  EXPECT_TRUE(c.node(2).storage->Append(rd.entries).ok());
  c.raw(2).Advance(rd);
}

// Found by the simulation: with one voter, an entry commits as soon as the leader appends it,
// and the Ready's MSG_APP tells the learners so. Sent before the leader's write, a crash then
// left a learner applying an entry the restarted leader no longer had.
TEST(RawNode, ALoneVoterWaitsForItsWriteBeforeTellingLearners) {
  TestCluster c(1, nullptr, /*learners=*/1);  // voter 1, learner 2
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  Ready rd = c.raw(1).GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries.size(), 1u) << "the lone voter's append commits it";
  EXPECT_FALSE(rd.send_before_persist);
  EXPECT_TRUE(c.node(1).storage->Append(rd.entries).ok());
  c.raw(1).Advance(rd);
}

TEST(RawNode, QuietOnlyForALeaderWithNothingLeftToDo) {
  TestCluster c(3);
  c.Elect(1);
  EXPECT_TRUE(c.raw(1).Quiet());
  EXPECT_FALSE(c.raw(2).Quiet()) << "a follower is never quiet";
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  EXPECT_FALSE(c.raw(1).Quiet()) << "an entry not yet everywhere";
  c.Stabilize();
  EXPECT_TRUE(c.raw(1).Quiet());
  c.raw(1).ReadIndex("r");
  EXPECT_FALSE(c.raw(1).Quiet()) << "a read waiting for its heartbeat round";
  c.Stabilize();
  EXPECT_TRUE(c.raw(1).Quiet());
  // A follower cut off falls behind: not quiet until it has caught up.
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).Propose("y").ok());
  c.Stabilize();
  EXPECT_FALSE(c.raw(1).Quiet());
  c.Heal();
  c.TickAll(2);
  c.Stabilize();
  EXPECT_TRUE(c.raw(1).Quiet());
}

TEST(RawNode, AWokenLeaderGivesItsFollowersAWholeElectionTimeoutBeforeCheckQuorum) {
  // Nearly an election timeout after its last quorum check the leader stops being ticked
  // (hibernation); its followers, asked nothing, say nothing meanwhile. Ticked again as it
  // was, it steps down at once; woken first, it heartbeats and their answers count.
  for (bool woken : {false, true}) {
    TestCluster c(3, [](Config& cfg) { cfg.check_quorum = true; });
    c.Elect(1);
    c.Tick(1, 9);
    c.Stabilize();
    for (auto& [id, pr] : c.raw(1).raft_for_test().tracker().progress()) {
      pr.recent_active = false;
    }
    if (woken) c.raw(1).Woken();
    c.Tick(1);
    c.Stabilize();
    EXPECT_EQ(c.raw(1).GetStatus().role, woken ? Role::kLeader : Role::kFollower) << woken;
  }
}

}  // namespace
}  // namespace micedb::raft
