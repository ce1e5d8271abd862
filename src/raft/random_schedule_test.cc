// A quick randomized check inside the unit tests: three or five nodes under random message
// loss, duplication and reordering, partitions, restarts, compaction, leader transfers and
// reads, checking election safety and state machine safety after every step, and liveness
// once the faults stop. (The full deterministic simulation lives in tests/sim.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

class RandomSchedule {
 public:
  RandomSchedule(uint64_t seed, size_t n)
      : rng_(seed), n_(n), c_(n, [seed](Config& cfg) {
          cfg.random_seed = seed;
          cfg.max_size_per_msg = uint64_t{4} * 1024;
          cfg.max_inflight_msgs = 4;
        }) {
    c_.AutoReportSnapshots();
  }

  void Step() {
    std::uniform_int_distribution<int> pick(0, 99);
    int r = pick(rng_);
    uint64_t node = 1 + rng_() % n_;
    if (r < 30) {
      c_.Tick(node);
    } else if (r < 45) {
      uint64_t target = Leader().valid() && rng_() % 4 != 0 ? Leader().value() : node;
      (void)c_.raw(target).Propose("p" + std::to_string(next_value_++));
    } else if (r < 46) {
      ChangeMembership();
    } else if (r < 48) {
      c_.raw(node).ReadIndex("r");
    } else if (r < 50) {
      c_.raw(node).TransferLeader(N(1 + rng_() % n_));
    } else if (r < 52) {
      c_.Restart(N(node));
    } else if (r < 54) {
      Compact(node);
    } else if (r < 56) {
      c_.Heal();
      if (rng_() % 2) {
        c_.Isolate(node);
      }
    } else {
      Deliver();
    }
    c_.HandleReady(N(node));
    Check();
  }

  void Deliver() {
    auto& q = c_.inflight();
    if (q.empty()) {
      return;
    }
    size_t k = rng_() % q.size();  // reorder
    Message m = q[k];
    q.erase(q.begin() + static_cast<std::ptrdiff_t>(k));
    if (rng_() % 10 == 0) {  // drop
      c_.ReportSnapshotFate(m, false);
      return;
    }
    if (rng_() % 10 == 0) {
      q.push_back(m);  // duplicate
    }
    c_.ReportSnapshotFate(m, true);
    if (c_.raw(m.to()).Step(m).ok()) {
      c_.HandleReady(N(m.to()));
    }
  }

  NodeId Leader() {
    NodeId best;
    Term t;
    for (auto& [id, tn] : c_.nodes()) {
      if (tn.raft().role() == Role::kLeader && tn.raft().term() >= t) {
        best = id;
        t = tn.raft().term();
      }
    }
    return best;
  }

  // One single-server change on the leader: demote or remove a voter (keeping at least two),
  // promote a learner, or add back a removed node as a learner.
  void ChangeMembership() {
    NodeId leader = Leader();
    if (!leader.valid()) {
      return;
    }
    Raft& r = c_.raft(leader.value());
    NodeId target = N(1 + rng_() % n_);
    ConfChange cc;
    cc.set_node_id(target.value());
    ProgressTracker& t = r.tracker();
    if (t.IsVoter(target)) {
      if (t.voters().size() <= 2) {
        return;
      }
      cc.set_type(rng_() % 2 ? ADD_LEARNER : REMOVE_NODE);
    } else if (t.IsLearner(target)) {
      cc.set_type(ADD_VOTER);
    } else {
      cc.set_type(ADD_LEARNER);
    }
    c_.raw(leader.value()).ProposeConfChange(cc).IgnoreError();  // Busy is expected often
  }

  void Compact(uint64_t node) {
    TestNode& tn = c_.node(node);
    LogIndex applied = c_.raft(node).log().applied();
    if (applied <= tn.storage->FirstIndex()) {
      return;
    }
    ConfState cs = c_.raft(node).GetStatus().conf_state;
    if (!tn.storage->CreateSnapshot(applied, &cs, "").ok()) {
      return;
    }
    EXPECT_TRUE(tn.storage->Compact(applied).ok());
  }

  void Check() {
    for (auto& [id, tn] : c_.nodes()) {
      Raft& r = tn.raft();
      if (r.role() == Role::kLeader) {
        auto [it, fresh] = leaders_.emplace(r.term(), id);
        ASSERT_EQ(it->second, id) << "two leaders in term " << r.term();
      }
      auto& seen = checked_[id];
      for (size_t k = seen; k < tn.applied.size(); ++k) {
        const Entry& e = tn.applied[k];
        auto [it, fresh] = committed_.emplace(e.index(), std::make_pair(e.term(), e.data()));
        ASSERT_EQ(it->second.first, e.term())
            << "node " << id << " applied a different entry at " << e.index();
        ASSERT_EQ(it->second.second, e.data());
      }
      seen = tn.applied.size();
    }
  }

  // After the faults stop, a leader emerges and a new proposal commits everywhere.
  void CheckLiveness() {
    c_.Heal();
    NodeId leader = c_.TickUntilLeader(500);
    ASSERT_TRUE(leader.valid());
    Status s;
    for (int k = 0; k < 50; ++k) {
      leader = NodeId();
      for (auto& [id, tn] : c_.nodes()) {
        if (tn.raft().role() == Role::kLeader) {
          leader = id;
        }
      }
      if (leader.valid() && (s = c_.raw(leader.value()).Propose("final")).ok()) {
        break;
      }
      c_.TickAll();
      c_.Stabilize();
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (int k = 0; k < 20; ++k) {
      c_.TickAll();
      c_.Stabilize();
    }
    Check();
    for (auto& [id, tn] : c_.nodes()) {
      if (!c_.raft(leader.value()).tracker().IsMember(id)) {
        continue;  // removed: left behind
      }
      EXPECT_EQ(tn.raft().log().committed(), c_.raft(leader.value()).log().committed())
          << "node " << id;
    }
  }

 private:
  std::mt19937_64 rng_;
  size_t n_;
  TestCluster c_;
  uint64_t next_value_ = 0;
  std::map<Term, NodeId> leaders_;
  std::map<uint64_t, std::pair<uint64_t, std::string>> committed_;
  std::map<NodeId, size_t> checked_;
};

TEST(RandomSchedule, SafetyAndLiveness) {
  // RAFT_RANDOM_SEEDS=N runs more seeds (the default keeps the unit tests quick).
  uint64_t seeds = 60;
  int steps = 3000;
  if (const char* env = std::getenv("RAFT_RANDOM_SEEDS")) {
    seeds = std::strtoull(env, nullptr, 10);
  }
  if (const char* env = std::getenv("RAFT_RANDOM_STEPS")) {
    steps = std::atoi(env);
  }
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomSchedule s(seed, seed % 2 ? 3 : 5);
    for (int step = 0; step < steps; ++step) {
      s.Step();
      if (::testing::Test::HasFatalFailure()) {
        return;
      }
    }
    s.CheckLiveness();
    if (::testing::Test::HasFailure()) {
      return;
    }
  }
}

}  // namespace
}  // namespace micedb::raft
