// Leader leases when the nodes' clocks disagree (raft.md §7): three stores run by hand
// (StoreOptions::manual) on one ManualClock, each seeing it through its own SkewedClock (a rate,
// a freeze), stepped one millisecond at a time, so every case is exact and repeatable.
#include <gtest/gtest.h>

#include <set>

#include "store/store_test_util.h"

namespace micedb::store::test {
namespace {

class LeaseClockTest : public StoreTest {
 protected:
  void StartManual() {
    for (uint64_t id : {1, 2, 3}) clocks_[id] = std::make_unique<SkewedClock>(&base_, 1.0);
    cluster_->tweak = [this](uint64_t id, StoreOptions* o) {
      o->manual = true;
      o->clock = clocks_[id].get();
      o->lease_reads = !lease_reads_off_.contains(id);
    };
    Start3();
  }
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(base_.NowMonotonic()).count();
  }
  // One millisecond: every store not held runs its loop once.
  void Step() {
    base_.Advance(1ms);
    for (uint64_t id : {1, 2, 3}) {
      if (!held_.contains(id)) cluster_->GetStore(id)->Poll();
    }
  }
  // Steps until pred() holds, at most `ms` milliseconds; whether it held.
  bool RunUntil(const std::function<bool()>& pred, int ms) {
    for (int i = 0; i < ms; ++i) {
      if (pred()) return true;
      Step();
    }
    return pred();
  }
  // The leader of region 1 that all of `ids` agree on (0: none).
  uint64_t Agreed(const std::vector<uint64_t>& ids) {
    uint64_t leader = 0;
    for (uint64_t id : ids) {
      const uint64_t l = cluster_->GetStore(id)->LeaderOf(RegionId(1)).value();
      if (l == 0 || (leader != 0 && l != leader)) return 0;
      leader = l;
    }
    return leader;
  }
  bool Put(uint64_t at, const std::string& k, const std::string& v) {
    bool done = false;
    bool ok = false;
    cluster_->GetStore(at)->Propose(TestRequest("P" + k + "=" + v),
                                    [&](const region::RegionResponse& r) {
                                      done = true;
                                      ok = !r.has_error();
                                    });
    return RunUntil([&] { return done; }, 3000) && ok;
  }
  // Region 1 led by *leader with a lease, k = "old"; x and y are the followers.
  void StartWithLease(uint64_t* leader, uint64_t* x, uint64_t* y) {
    StartManual();
    ASSERT_TRUE(RunUntil([&] { return (*leader = Agreed({1, 2, 3})) != 0; }, 10000));
    *x = *leader == 1 ? 2 : 1;
    *y = 6 - *leader - *x;
    ASSERT_TRUE(Put(*leader, "k", "old"));
    ASSERT_TRUE(
        RunUntil([&] { return LeaseGet(cluster_->GetStore(*leader), "k").has_value(); }, 3000));
  }
  // A vote request from `from` to `to` in a far later term, with a log ahead of anyone's:
  // granted as soon as `to` is free to vote.
  static raft::Message VoteRequest(uint64_t from, uint64_t to) {
    raft::Message m;
    m.set_type(raft::MSG_VOTE);
    m.set_region_id(1);
    m.set_from(from);
    m.set_to(to);
    m.set_term(1000);
    m.set_log_term(999);
    m.set_index(1'000'000);
    return m;
  }

  ManualClock base_{1s};
  std::map<uint64_t, std::unique_ptr<SkewedClock>> clocks_;
  std::set<uint64_t> held_;  // stores whose loop is not run (stalled, or their VM paused)
  std::set<uint64_t> lease_reads_off_;
};

// Issue 13 item 3: a voter promises the leader of a heartbeat round not to vote for election_tick
// of its own ticks; the leader's lease, counted on its own clock, must end first even when that
// clock runs 15% slow and the voter's promise is as short as it can be: the voter wakes from a
// stall just as the round arrives, ticks at once and once more 1 ms later (the catch-up tick).
// The lease used to take 90% of (election_tick - 2) ticks: 72 ms here, 84.7 ms of true time on
// the slow clock, past the voter's 82 ms.
TEST_F(LeaseClockTest, ALeaderClockFifteenPercentSlowEndsItsLeaseBeforeAVoterIsFree) {
  uint64_t leader = 0, x = 0, y = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLease(&leader, &x, &y));
  clocks_[leader]->SetRate(0.85);
  bool cut = false;
  int heartbeats = 0;
  std::optional<int64_t> granted;
  cluster_->drop = [&](const raft::Message& m) {
    if (m.from() == x && m.type() == raft::MSG_VOTE_RESP && !m.reject() && !granted) {
      granted = Now();
    }
    if (m.from() == leader && m.to() == x && m.type() == raft::MSG_HEARTBEAT) ++heartbeats;
    const bool leader_x =
        (m.from() == leader && m.to() == x) || (m.from() == x && m.to() == leader);
    return m.from() == y || m.to() == y || (cut && leader_x);
  };
  ASSERT_TRUE(
      RunUntil([&] { return LeaseGet(cluster_->GetStore(leader), "k").has_value(); }, 3000));
  held_.insert(x);
  for (int i = 0; i < 30; ++i) Step();
  heartbeats = 0;
  ASSERT_TRUE(RunUntil([&] { return heartbeats > 0; }, 1000));
  // The leader sent a round this millisecond: x takes it now, and hears nothing more after.
  held_.erase(x);
  cluster_->GetStore(x)->Poll();
  cut = true;
  const int64_t woke = Now();
  int64_t last_lease = -1;
  // Until x has voted and the lease is over.
  for (int i = 0; i < 400; ++i) {
    const bool leased = LeaseGet(cluster_->GetStore(leader), "k").has_value();
    if (leased) last_lease = Now();
    if (granted && !leased) break;
    cluster_->GetStore(x)->Step({VoteRequest(y, x)});
    Step();
  }
  ASSERT_TRUE(granted.has_value()) << "x never became free to vote";
  ASSERT_GE(last_lease, woke) << "the leader held no lease after the round x answered";
  EXPECT_LT(last_lease, *granted) << "the lease outlived x's promise by "
                                  << last_lease - *granted + 1 << " ms (x woke at " << woke << ")";
}

// Issue 13 item 3: a node running without lease reads must still keep, after a restart, the
// promise it may have made to a leader that leases (the startup vote guard used to follow the
// node's own --raft-lease-reads).
TEST_F(LeaseClockTest, ARestartedNodeWithoutLeaseReadsKeepsItsPromise) {
  uint64_t leader = 0, x = 0, y = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLease(&leader, &x, &y));
  std::optional<int64_t> granted;
  cluster_->drop = [&](const raft::Message& m) {
    if (m.from() == x && m.type() == raft::MSG_VOTE_RESP && !m.reject() && !granted) {
      granted = Now();
    }
    return m.from() == x || m.to() == x;  // x hears from no one but the test
  };
  cluster_->StopNode(x);  // as kill -9: the promise was in memory only
  lease_reads_off_.insert(x);
  ASSERT_NO_FATAL_FAILURE(cluster_->StartNode(x, {}));
  const int64_t restarted = Now();
  cluster_->GetStore(x)->Step({VoteRequest(y, x)});
  Step();
  Step();
  EXPECT_FALSE(granted.has_value()) << "x voted at once after its restart";
  // Once election_tick of its ticks have passed it votes again: the check above could see it.
  ASSERT_TRUE(RunUntil(
      [&] {
        cluster_->GetStore(x)->Step({VoteRequest(y, x)});
        return granted.has_value();
      },
      1000));
  EXPECT_GE(*granted - restarted, 10 * 10 - 1) << "x voted before election_tick ticks passed";
}

// Issue 13 item 3: a paused VM stops every guest clock, so the leader's lease clock stood still
// while the others elected a new leader and wrote. When the host sets the guest's wall time on
// resume, the lease must not answer: neither on a client thread before the loop runs again,
// nor after the loop notices the gap, until a new heartbeat round is answered.
TEST_F(LeaseClockTest, AFrozenLeaderAnswersNoLeaseReadsWhenItWakes) {
  uint64_t leader = 0, x = 0, y = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLease(&leader, &x, &y));
  Store* s = cluster_->GetStore(leader);
  clocks_[leader]->Freeze();
  held_.insert(leader);
  uint64_t now_leader = 0;
  ASSERT_TRUE(RunUntil(
      [&] {
        now_leader = Agreed({x, y});
        return now_leader != 0 && now_leader != leader;
      },
      10000));
  ASSERT_TRUE(Put(now_leader, "k", "new"));
  clocks_[leader]->Thaw(/*host_sets_wall=*/true);
  auto r = LeaseGet(s, "k");
  EXPECT_FALSE(r.has_value()) << "stale lease read: " << (r && r->ok() ? **r : "error");

  // A short pause, with no election meanwhile: the loop suspends the lease until a round sent
  // after it is answered.
  held_.erase(leader);
  cluster_->drop = nullptr;
  ASSERT_TRUE(RunUntil(
      [&] {
        return Agreed({1, 2, 3}) == now_leader &&
               LeaseGet(cluster_->GetStore(now_leader), "k").has_value();
      },
      10000));
  Store* n = cluster_->GetStore(now_leader);
  const uint64_t suspensions = n->counters().lease_suspensions.load();
  clocks_[now_leader]->Freeze();
  held_.insert(now_leader);
  for (int i = 0; i < 30; ++i) Step();
  clocks_[now_leader]->Thaw(/*host_sets_wall=*/true);
  EXPECT_FALSE(LeaseGet(n, "k").has_value()) << "before the loop runs";
  held_.erase(now_leader);
  n->Poll();
  EXPECT_EQ(n->counters().lease_suspensions.load(), suspensions + 1);
  EXPECT_FALSE(LeaseGet(n, "k").has_value()) << "after the loop ran, before a new round";
  ASSERT_TRUE(RunUntil([&] { return LeaseGet(n, "k").has_value(); }, 1000))
      << "the next round renews the lease";
  r = LeaseGet(n, "k");
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(**r, "new");
}

}  // namespace
}  // namespace micedb::store::test
