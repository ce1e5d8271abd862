// The store over three (or four) in-process stores: replication, follower reads, restart, log
// truncation with snapshot catch-up, membership, and the refusal of region requests with a
// stale epoch or for a region that is not here.
#include <gtest/gtest.h>

#include "store/store_test_util.h"

namespace micedb::store::test {
namespace {

TEST_F(StoreTest, ReplicatesAndServesLinearizableReadsOnEveryNode) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 50; ++i) {
    auto r = cluster_->Put(leader, fmt::format("k{}", i), fmt::format("v{}", i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "OK");
  }
  for (uint64_t id : {1, 2, 3}) {
    auto r = cluster_->Get(id, "k49");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "v49");
  }
  uint64_t follower = leader == 1 ? 2 : 1;
  auto r = cluster_->Put(follower, "x", "y");
  EXPECT_EQ(r.status().code(), StatusCode::kNotLeader);
}

TEST_F(StoreTest, AProposalForAnotherTermIsRefused) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  auto info = cluster_->GetStore(leader)->RegionInfoOf(RegionId(1));
  ASSERT_TRUE(info.has_value());
  const uint64_t term = info->raft.term.value();
  auto put = [&](uint64_t only_term) {
    return cluster_->Call([&](const ResultCallback& cb) {
      cluster_->GetStore(leader)->Propose(TestRequest("Pt=" + std::to_string(only_term)), Adapt(cb),
                                          only_term);
    });
  };
  auto r = put(term + 1);
  EXPECT_EQ(r.status().code(), StatusCode::kNotLeader) << r.status().ToString();
  r = put(term);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*cluster_->Get(leader, "t"), std::to_string(term));
}

// Found by the fault tests: a follower's MSG_READ_INDEX lost on the way to the leader left the
// read waiting for the whole request timeout, and the client got a timeout. It is now failed
// as retryable after two election timeouts and asked again.
TEST_F(StoreTest, ReadSurvivesALostReadIndexMessage) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v").ok());
  std::atomic<int> dropped{0};
  cluster_->drop = [&](const raft::Message& m) {
    if (m.type() != raft::MSG_READ_INDEX) return false;
    return dropped.fetch_add(1) == 0;  // only the first one
  };
  uint64_t follower = leader == 1 ? 2 : 1;
  // Not a timing assert: without the retry the read would fail with TimedOut (the store's
  // 10 s request timeout, before the test's 10 s wait), so its success is the condition.
  auto r = cluster_->Get(follower, "k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "v");
  EXPECT_GE(dropped.load(), 2);  // the lost request and the one asked again
}

TEST_F(StoreTest, RestartedNodeRecoversFromItsDiskAndCatchesUp) {
  Start3();
  for (int i = 0; i < 20; ++i) PutRetry(fmt::format("a{}", i), "1", {1, 2, 3});
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  uint64_t victim = leader == 3 ? 2 : 3;
  cluster_->StopNode(victim);
  std::vector<uint64_t> live;
  for (uint64_t id : {1, 2, 3}) {
    if (id != victim) live.push_back(id);
  }
  for (int i = 0; i < 20; ++i) PutRetry(fmt::format("b{}", i), "2", live);
  cluster_->StartNode(victim, {});
  auto r = cluster_->Get(victim, "b19");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2");
}

TEST_F(StoreTest, FollowerBehindTruncatedLogGetsSnapshot) {
  cluster_->gc_threshold = 20;
  cluster_->gc_keep = 5;
  cluster_->gc_max_lag = 50;
  Start3();
  PutRetry("first", "1", {1, 2, 3});
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  uint64_t victim = leader == 3 ? 2 : 3;
  cluster_->StopNode(victim);
  std::vector<uint64_t> live;
  for (uint64_t id : {1, 2, 3}) {
    if (id != victim) live.push_back(id);
  }
  for (int i = 0; i < 200; ++i) PutRetry(fmt::format("c{:03}", i), std::to_string(i), live);
  cluster_->StartNode(victim, {});
  auto r = cluster_->Get(victim, "c199");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "199");
  EXPECT_GE(cluster_->snapshots_delivered_.load(), 1);
  // Same data everywhere once the victim has applied everything.
  for (int i = 0; i < 200 && DataHash(cluster_->node(victim).engine.get()) !=
                                 DataHash(cluster_->node(leader).engine.get());
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(DataHash(cluster_->node(victim).engine.get()),
            DataHash(cluster_->node(leader).engine.get()));
}

TEST_F(StoreTest, AddLearnerPromoteAndRemove) {
  Start3();
  PutRetry("before", "1", {1, 2, 3});
  cluster_->StartNode(4, {});
  ChangeMembership(raft::ADD_LEARNER, 4, {1, 2, 3});
  PutRetry("after-learner", "2", {1, 2, 3});
  auto r = cluster_->Get(4, "after-learner");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2");
  ChangeMembership(raft::ADD_VOTER, 4, {1, 2, 3});
  ChangeMembership(raft::REMOVE_NODE, 1, {1, 2, 3});
  PutRetry("after-remove", "3", {2, 3, 4});
  for (uint64_t id : {2, 3, 4}) {
    auto g = cluster_->Get(id, "after-remove");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, "3");
  }
}

// A replica removed while its store was down is told so when the store comes back (MSG_GONE
// from the leader) and deleted, leaving a tombstone; the region can be added there again later
// (messages stamped with a newer conf_ver clear the tombstone).
TEST_F(StoreTest, AReplicaRemovedWhileDownIsDeletedOnReturnAndTheRegionCanComeBack) {
  Start3();
  PutRetry("a", "1", {1, 2, 3});
  cluster_->StartNode(4, {});
  ChangeMembership(raft::ADD_LEARNER, 4, {1, 2, 3});
  ChangeMembership(raft::ADD_VOTER, 4, {1, 2, 3});
  cluster_->StopNode(3);
  ChangeMembership(raft::REMOVE_NODE, 3, {1, 2, 4});
  PutRetry("b", "2", {1, 2, 4});
  cluster_->StartNode(3, {});
  // Its replica still thinks it is a voter; its first campaign reaches the leader, which
  // answers that it is gone.
  bool deleted = false;
  for (int i = 0; i < 500 && !deleted; ++i) {
    deleted = !cluster_->GetStore(3)->RegionInfoOf(RegionId(1)).has_value();
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(deleted) << "the stale replica was not deleted";
  EXPECT_EQ(cluster_->GetStore(3)->counters().gone_destroyed.load(), 1u);
  uint64_t sent = 0;
  for (uint64_t id : {1, 2, 4}) sent += cluster_->GetStore(id)->counters().gone_sent.load();
  EXPECT_GT(sent, 0u);
  // The members are unharmed.
  PutRetry("c", "3", {1, 2, 4});
  // Added back: the tombstone gives way to the newer configuration, a snapshot fills it.
  ChangeMembership(raft::ADD_LEARNER, 3, {1, 2, 4});
  Result<std::string> r = Status::Unavailable("not yet");
  for (int i = 0; i < 250 && !r.ok(); ++i) {
    r = cluster_->Get(3, "c");  // RegionNotFound until the first message arrives there
    if (!r.ok()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "3");
}

// ---- Region requests (DESIGN §8 rule 7) ----

TEST_F(StoreTest, RequestsWithAStaleEpochAreRefusedEverywhereAndNeverApplied) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("v", &leader));
  Store* s = cluster_->GetStore(leader);
  for (uint64_t version : {0, 2}) {
    auto w = Await(
        [&](const ResponseCallback& cb) { s->Propose(TestRequest("Pk=stale", version), cb); });
    ASSERT_TRUE(w.has_error());
    ASSERT_EQ(w.error().kind_case(), region::RegionError::kEpochNotMatch) << w.DebugString();
    ASSERT_EQ(w.error().epoch_not_match().current_regions_size(), 1);
    EXPECT_EQ(w.error().epoch_not_match().current_regions(0).id(), 1u);
    EXPECT_EQ(w.error().epoch_not_match().current_regions(0).epoch().version(), 1u);
    auto lease = s->ReadUnderLease(TestRequest("Gk", version));
    if (lease.has_value()) {
      EXPECT_EQ(lease->error().kind_case(), region::RegionError::kEpochNotMatch);
    }
    for (uint64_t id : {1, 2, 3}) {
      Store* at = cluster_->GetStore(id);
      EXPECT_EQ(at->ReadLocal(TestRequest("Gk", version)).error().kind_case(),
                region::RegionError::kEpochNotMatch);
      auto r = Await([&](const ResponseCallback& cb) {
        at->ReadLinearizable(TestRequest("Gk", version), cb);
      });
      // A follower may first answer that it knows no leader; never with the data.
      EXPECT_TRUE(r.has_error());
      EXPECT_NE(r.error().kind_case(), region::RegionError::kTimeout);
    }
  }
  EXPECT_GT(s->counters().requests_refused.load(), 0u);
  // Nothing was applied anywhere: every replica still has "v" once a later write lands.
  ASSERT_TRUE(cluster_->Put(leader, "after", "1").ok());
  for (uint64_t id : {1, 2, 3}) {
    auto g = cluster_->Get(id, "k");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, "v");
  }
}

TEST_F(StoreTest, RequestsForARegionThatIsNotHereAreRefused) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  Store* s = cluster_->GetStore(leader);
  auto req = TestRequest("Pk=x");
  req.mutable_header()->set_region_id(9);
  auto w = Await([&](const ResponseCallback& cb) { s->Propose(req, cb); });
  EXPECT_EQ(w.error().kind_case(), region::RegionError::kRegionNotFound);
  EXPECT_EQ(w.error().region_not_found().region_id(), 9u);
  EXPECT_EQ(s->ReadLocal(req).error().kind_case(), region::RegionError::kRegionNotFound);
  EXPECT_FALSE(s->ReadUnderLease(req).has_value());
  auto r = Await([&](const ResponseCallback& cb) { s->ReadLinearizable(req, cb); });
  EXPECT_EQ(r.error().kind_case(), region::RegionError::kRegionNotFound);
}

}  // namespace
}  // namespace micedb::store::test

namespace micedb::store::test {
namespace {

region::RegionRequest AdminRequest(const Store* s, uint64_t conf_ver_delta = 0) {
  region::RegionRequest req;
  req.set_format(region::FORMAT_V1);
  req.mutable_header()->set_region_id(1);
  for (const auto& r : s->Regions()) {
    if (r.descriptor.id() == 1) *req.mutable_header()->mutable_epoch() = r.descriptor.epoch();
  }
  auto* epoch = req.mutable_header()->mutable_epoch();
  epoch->set_conf_ver(epoch->conf_ver() + conf_ver_delta);
  return req;
}

region::RegionRequest Remove(const Store* s, uint64_t node) {
  auto req = AdminRequest(s);
  req.mutable_admin()->mutable_change_peer()->set_op(region::ChangePeer::REMOVE);
  req.mutable_admin()->mutable_change_peer()->set_node_id(node);
  return req;
}

TEST_F(StoreTest, AdminRequestsAreRefusedOffTheLeaderWithAStaleEpochOrWhenIncomplete) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  PutRetry("k", "v", {1, 2, 3});
  Store* s = cluster_->GetStore(leader);
  uint64_t follower = leader % 3 + 1;
  // Off the leader: NotLeader naming it.
  auto r = Await([&](const ResponseCallback& cb) {
    cluster_->GetStore(follower)->RunAdmin(Remove(s, follower), cb);
  });
  ASSERT_EQ(r.error().kind_case(), region::RegionError::kNotLeader);
  EXPECT_EQ(r.error().not_leader().leader(), leader);
  // A conf_ver the region does not have: EpochNotMatch with the current descriptor.
  auto stale = Remove(s, follower);
  stale.mutable_header()->mutable_epoch()->set_conf_ver(99);
  r = Await([&](const ResponseCallback& cb) { s->RunAdmin(stale, cb); });
  ASSERT_EQ(r.error().kind_case(), region::RegionError::kEpochNotMatch);
  // Adding a learner without its address, or naming node 0: invalid, nothing proposed.
  auto add = AdminRequest(s);
  add.mutable_admin()->mutable_change_peer()->set_op(region::ChangePeer::ADD_LEARNER);
  add.mutable_admin()->mutable_change_peer()->set_node_id(4);
  r = Await([&](const ResponseCallback& cb) { s->RunAdmin(add, cb); });
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error().kind_case(), region::RegionError::KIND_NOT_SET);
  EXPECT_NE(r.error().message().find("peer address"), std::string::npos);
  r = Await([&](const ResponseCallback& cb) { s->RunAdmin(Remove(s, 0), cb); });
  EXPECT_EQ(r.error().kind_case(), region::RegionError::KIND_NOT_SET);
  // The membership did not change.
  for (const auto& info : s->Regions()) EXPECT_EQ(info.descriptor.conf_state().voters_size(), 3);
}

TEST_F(StoreTest, ALeaderAskedToRemoveItselfHandsLeadershipOverFirst) {
  Start3();
  PutRetry("k", "v", {1, 2, 3});
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  auto r = Await([&](const ResponseCallback& cb) {
    Store* s = cluster_->GetStore(leader);
    s->RunAdmin(Remove(s, leader), cb);
  });
  ASSERT_EQ(r.error().kind_case(), region::RegionError::kServerBusy) << r.DebugString();
  EXPECT_GT(r.error().server_busy().backoff_ms(), 0u);
  // Leadership moves to another voter; the removal, retried there, applies and the rest keep
  // serving.
  uint64_t next = 0;
  for (int i = 0; i < 200; ++i) {
    next = cluster_->WaitLeader({1, 2, 3});
    if (next != 0 && next != leader) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_NE(next, leader);
  ASSERT_NE(next, 0u);
  region::RegionResponse done;
  for (int attempt = 0; attempt < 50; ++attempt) {
    uint64_t at = cluster_->WaitLeader({1, 2, 3});
    if (at == 0 || at == leader) continue;
    done = Await([&](const ResponseCallback& cb) {
      Store* s = cluster_->GetStore(at);
      s->RunAdmin(Remove(s, leader), cb);
    });
    if (!done.has_error()) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(done.has_error()) << done.DebugString();
  std::vector<uint64_t> rest;
  for (uint64_t id : {1, 2, 3}) {
    if (id != leader) rest.push_back(id);
  }
  PutRetry("after", "1", rest);
  // Every remaining store applies the removal; a follower may apply it a moment after the
  // write above is acknowledged (it can answer the write's append before it applies).
  auto names_old_leader = [&] {
    for (uint64_t id : rest) {
      for (const auto& info : cluster_->GetStore(id)->Regions()) {
        for (uint64_t v : info.descriptor.conf_state().voters()) {
          if (v == leader) return true;
        }
      }
    }
    return false;
  };
  for (int i = 0; i < 200 && names_old_leader(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(names_old_leader());
}

TEST_F(StoreTest, ALeaderTransferAdminRequestMovesLeadership) {
  Start3();
  PutRetry("k", "v", {1, 2, 3});
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  uint64_t target = leader % 3 + 1;
  for (int attempt = 0; attempt < 20 && cluster_->WaitLeader({1, 2, 3}) != target; ++attempt) {
    uint64_t at = cluster_->WaitLeader({1, 2, 3});
    if (at == 0) continue;
    Store* s = cluster_->GetStore(at);
    auto req = AdminRequest(s);
    req.mutable_admin()->mutable_transfer_leader()->set_node_id(target);
    auto r = Await([&](const ResponseCallback& cb) { s->RunAdmin(req, cb); });
    EXPECT_FALSE(r.has_error() && r.error().kind_case() != region::RegionError::kNotLeader)
        << r.DebugString();
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(cluster_->WaitLeader({1, 2, 3}), target);
}

// A clock whose wall time can be moved ahead (the monotonic time runs as the system's).
class JumpingClock final : public Clock {
 public:
  std::chrono::nanoseconds NowMonotonic() const override {
    return SystemClock::Get()->NowMonotonic();
  }
  std::chrono::microseconds NowWall() const override {
    return SystemClock::Get()->NowWall() + std::chrono::milliseconds(ahead_ms.load());
  }
  std::atomic<int64_t> ahead_ms{0};
};

size_t DedupRecords(storage::Engine* e) {
  auto it = e->NewIterator(Cf::kDedup, storage::ReadOptions{});
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) n++;
  return n;
}

// At-most-once records are removed once older than the window (10 min by the leaders' clocks)
// plus a slack (a quarter of it), and a region whose records are all younger is not scanned
// again and again: with many regions, sweeping everything every second cost more than the
// writes did.
TEST_F(StoreTest, OldRequestRecordsAreSweptWithoutRescanningYoungOnes) {
  JumpingClock clock;
  cluster_->tweak = [&](uint64_t, StoreOptions* o) { o->clock = &clock; };
  cluster_->StartNode(1, {1});
  ASSERT_EQ(cluster_->WaitLeader({1}), 1u);
  Store* s = cluster_->GetStore(1);
  uint64_t next_id = 1;
  auto put = [&](const std::string& k) {
    auto r = cluster_->Call([&](const ResultCallback& cb) {
      region::RegionRequest req = TestRequest("P" + k + "=v");
      req.mutable_header()->set_request_id(next_id++);
      req.mutable_header()->set_request_ts_ms(clock.NowWallMillis());
      s->Propose(std::move(req), Adapt(cb));
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  for (int i = 0; i < 20; ++i) ASSERT_NO_FATAL_FAILURE(put(fmt::format("k{}", i)));
  storage::Engine* engine = cluster_->node(1).engine.get();
  EXPECT_EQ(DedupRecords(engine), 20u);
  // After a start the oldest record is unknown: one sweep looks (four a second)...
  std::this_thread::sleep_for(600ms);
  const uint64_t scanned = s->counters().dedup_scanned.load();
  EXPECT_GE(scanned, 1u);
  EXPECT_LE(scanned, 20u);
  // ... and none again while every record is younger than the window plus the slack.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(s->counters().dedup_scanned.load(), scanned);
  // 11 minutes on: past the window, not past the slack.
  clock.ahead_ms = int64_t{11} * 60 * 1000;
  ASSERT_NO_FATAL_FAILURE(put("late1"));
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(s->counters().dedup_scanned.load(), scanned);
  EXPECT_EQ(DedupRecords(engine), 21u);
  // 13 minutes on: the twenty go, the two later ones stay.
  clock.ahead_ms = int64_t{13} * 60 * 1000;
  ASSERT_NO_FATAL_FAILURE(put("late2"));
  for (int i = 0; i < 100 && DedupRecords(engine) != 2; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(DedupRecords(engine), 2u);
  EXPECT_EQ(s->counters().dedup_deleted.load(), 20u);
  // The sweep that removed them knows the oldest left: nothing is scanned again for now.
  const uint64_t after = s->counters().dedup_scanned.load();
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(s->counters().dedup_scanned.load(), after);
}

}  // namespace
// A leader whose apply takes many election timeouts (a MULTI/EXEC that reads big values, in
// the kv state machine) keeps its followers: the work pulses (common/pulse.h), and the loop's
// pulse sends each leader's heartbeats. Without the pulses the followers elect another leader
// after 100-200 ms here.
TEST_F(StoreTest, LeaderBusyApplyingKeepsItsFollowersThroughPulses) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "a", "1").ok());
  uint64_t elections = 0;
  for (uint64_t id : {1, 2, 3}) elections += cluster_->GetStore(id)->counters().elections_started;
  cluster_->sm().slow_apply_ms = 1000;  // ten election timeouts
  cluster_->sm().pulse_while_slow = true;
  cluster_->sm().slow_engine = cluster_->node(leader).engine.get();
  auto r = cluster_->Put(leader, "b", "2");
  cluster_->sm().slow_engine = nullptr;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  uint64_t after = 0;
  for (uint64_t id : {1, 2, 3}) after += cluster_->GetStore(id)->counters().elections_started;
  EXPECT_EQ(after, elections) << "a follower campaigned while the leader was busy";
  EXPECT_EQ(cluster_->GetStore(leader)->LeaderOf(RegionId(1)).value(), leader);
  EXPECT_GT(cluster_->GetStore(leader)->counters().pulses.load(), 0u);
}

}  // namespace micedb::store::test
