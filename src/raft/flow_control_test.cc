// Replication flow control: probe until a follower's log position is known, then stream
// within an inflight window bounded by message count and bytes; messages obey
// max_size_per_msg.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

size_t AppsTo(const std::vector<Message>& msgs, uint64_t to) {
  size_t n = 0;
  for (const Message& m : msgs) {
    n += m.type() == MSG_APP && m.to() == to;
  }
  return n;
}

// A leader of {1,2} whose follower never answers.
SoloNode SilentFollowerLeader(const std::function<void(Config&)>& tweak) {
  SoloNode l(1, {1, 2}, [&](Config& c) {
    c.pre_vote = false;
    c.check_quorum = false;
    tweak(c);
  });
  EXPECT_TRUE(l.node().Campaign().ok());
  l.Drain();
  Message grant = MakeMsg(MSG_VOTE_RESP, 2, 1, 1);
  l.Feed(grant);
  EXPECT_EQ(l.raft().role(), Role::kLeader);
  return l;
}

TEST(FlowControl, ProbeSendsOneAppendUntilAnswered) {
  SoloNode l = SilentFollowerLeader([](Config&) {});
  // The election already sent the first probe (with the no-op).
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).state, ProgressState::kProbe);
  std::vector<Message> out;
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(l.node().Propose("x").ok());
    auto got = l.Drain();
    out.insert(out.end(), got.begin(), got.end());
  }
  EXPECT_EQ(AppsTo(out, 2), 0u) << "probe is paused while a probe is outstanding";
  // A heartbeat response unpauses one more probe.
  l.Feed(MakeMsg(MSG_HEARTBEAT_RESP, 2, 1, 1));
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).state, ProgressState::kProbe);
}

TEST(FlowControl, AckMovesProbeToReplicate) {
  SoloNode l = SilentFollowerLeader([](Config&) {});
  Message ack = MakeMsg(MSG_APP_RESP, 2, 1, 1);
  ack.set_index(1);
  l.Feed(ack);
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).state, ProgressState::kReplicate);
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).match, I(1));
}

TEST(FlowControl, InflightWindowBoundedByCount) {
  SoloNode l = SilentFollowerLeader([](Config& c) { c.max_inflight_msgs = 3; });
  Message ack = MakeMsg(MSG_APP_RESP, 2, 1, 1);
  ack.set_index(1);
  l.Feed(ack);
  size_t apps = 0;
  for (int k = 0; k < 10; ++k) {
    ASSERT_TRUE(l.node().Propose("x").ok());
    apps += AppsTo(l.Drain(), 2);
  }
  EXPECT_EQ(apps, 3u);
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).inflight, 3u);
  // Acknowledging the first two frees two slots; the whole backlog fits in one message.
  ack.set_index(3);
  auto out = l.Feed(ack);
  ASSERT_EQ(AppsTo(out, 2), 1u);
  EXPECT_EQ(Only(out, MSG_APP).entries_size(), 7);
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).inflight, 2u);
}

TEST(FlowControl, InflightWindowBoundedByBytes) {
  SoloNode l = SilentFollowerLeader([](Config& c) {
    c.max_inflight_bytes = 1000;
    c.max_size_per_msg = 100000;
  });
  Message ack = MakeMsg(MSG_APP_RESP, 2, 1, 1);
  ack.set_index(1);
  l.Feed(ack);
  size_t apps = 0, bytes = 0;
  for (int k = 0; k < 10; ++k) {
    ASSERT_TRUE(l.node().Propose(std::string(300, 'x')).ok());
    for (const Message& m : l.Drain()) {
      if (m.type() != MSG_APP || m.to() != 2) {
        continue;
      }
      ++apps;
      for (const Entry& e : m.entries()) {
        bytes += EntrySize(e);
      }
    }
  }
  EXPECT_EQ(apps, 4u) << "300+16 bytes each; the window of 1000 fills after the fourth";
  EXPECT_LT(bytes, 1000u + 316u);
}

TEST(FlowControl, MaxSizePerMessageSplitsEntries) {
  TestCluster c(2, [](Config& cfg) { cfg.max_size_per_msg = uint64_t{2} * (100 + 16); });
  c.Elect(1);
  c.Isolate(2);
  for (int k = 0; k < 10; ++k) {
    ASSERT_TRUE(c.raw(1).Propose(std::string(100, 'y')).ok());
  }
  c.Stabilize();
  c.Heal();
  c.ResetSentCounts();
  c.TickAll();
  c.Stabilize();
  size_t max_entries = 0, apps = 0;
  for (const Message& m : c.sent_log()) {
    if (m.type() != MSG_APP) {
      continue;
    }
    ++apps;
    max_entries = std::max(max_entries, static_cast<size_t>(m.entries_size()));
  }
  EXPECT_LE(max_entries, 2u);
  EXPECT_GE(apps, 5u);
  EXPECT_EQ(c.AppliedData(2).size(), 10u);
}

TEST(FlowControl, ReportUnreachableFallsBackToProbe) {
  SoloNode l = SilentFollowerLeader([](Config&) {});
  Message ack = MakeMsg(MSG_APP_RESP, 2, 1, 1);
  ack.set_index(1);
  l.Feed(ack);
  ASSERT_EQ(l.raft().GetStatus().progress.at(N(2)).state, ProgressState::kReplicate);
  l.node().ReportUnreachable(N(2));
  EXPECT_EQ(l.raft().GetStatus().progress.at(N(2)).state, ProgressState::kProbe);
}

TEST(FlowControl, LostMessagesAreResentAfterHeartbeat) {
  TestCluster c(3);
  c.Elect(1);
  c.DropType(MSG_APP);
  ASSERT_TRUE(c.raw(1).Propose("lost-once").ok());
  c.Stabilize();
  c.Heal();
  c.raw(1).ReportUnreachable(N(2));
  c.raw(1).ReportUnreachable(N(3));
  c.TickAll();  // heartbeat -> response -> the leader sees the gap and resends
  c.Stabilize();
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i).size(), 1u);
  }
}

}  // namespace
}  // namespace micedb::raft
