// The nemesis: while faults are on, one action every few time units, drawn by the weights of
// the run's FaultProfile. Message loss, duplication and delay are applied per message in
// cluster_ready.cc (SendMessage).
#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tests/sim/cluster.h"

namespace micedb::sim {

void Cluster::OnNemesis() {
  if (!faults_on_) return;
  Schedule(rng_.Range(profile_.nemesis_gap_min, profile_.nemesis_gap_max),
           Event{.kind = EventKind::kNemesis});
  // Draw among the actions that would do something now.
  const int up = static_cast<int>(
      std::count_if(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->up(); }));
  const bool has_leader = Leader() != nullptr;
  auto applicable = [&](FaultAction a) {
    switch (a) {
      case FaultAction::kCrash:
        return up > 1;  // a run with everything down teaches little
      case FaultAction::kRestart:
        return up < options_.nodes;
      case FaultAction::kHeal:
        return !net_.healed();
      case FaultAction::kCrashLeader:
      case FaultAction::kMembership:
      case FaultAction::kTransfer:
        return has_leader;
      default:
        return true;
    }
  };
  std::array<int, static_cast<size_t>(FaultAction::kCount)> weights = profile_.weights;
  int total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!applicable(static_cast<FaultAction>(i))) weights[i] = 0;
    total += weights[i];
  }
  if (total == 0) return;
  int pick = static_cast<int>(rng_.Uniform(static_cast<uint64_t>(total)));
  auto action = FaultAction::kCount;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (pick < weights[i]) {
      action = static_cast<FaultAction>(i);
      break;
    }
    pick -= weights[i];
  }
  switch (action) {
    case FaultAction::kCrash:
      Crash();
      break;
    case FaultAction::kCrashLeader:
      CrashLeader();
      break;
    case FaultAction::kCrashMidReady:
      CrashMidReady();
      break;
    case FaultAction::kRestart:
      Restart();
      break;
    case FaultAction::kPartition:
      Partition();
      break;
    case FaultAction::kHeal:
      net_.Heal();
      Note("network healed");
      break;
    case FaultAction::kMembership:
      ChangeMembership();
      break;
    case FaultAction::kTransfer:
      TransferLeadership();
      break;
    case FaultAction::kCompact:
      Compact();
      break;
    case FaultAction::kCampaign:
      ForceCampaign();
      break;
    case FaultAction::kCount:
      break;
  }
}

SimNode* Cluster::RandomNode(bool want_up) {
  std::vector<SimNode*> pool;
  for (auto& n : nodes_) {
    if (n->up() == want_up) pool.push_back(n.get());
  }
  if (pool.empty()) return nullptr;
  return pool[rng_.Uniform(pool.size())];
}

void Cluster::Crash() {
  if (SimNode* n = RandomNode(true)) CrashNode(*n, "nemesis");
}

void Cluster::CrashLeader() {
  if (SimNode* n = Leader()) CrashNode(*n, "nemesis: leader");
}

void Cluster::CrashMidReady() {
  // Armed on any node: it fires when that node next leads and appends (a new leader's first
  // Ready holds its no-op) or commits. A leader that sends before persisting crashes after
  // sending its appends and before they are durable.
  SimNode* n = RandomNode(true);
  if (n == nullptr) return;
  const bool on_commit = rng_.OneIn(2);
  n->crash_at_send =
      on_commit ? SimNode::CrashPoint::kLeaderCommit : SimNode::CrashPoint::kLeaderAppend;
  Note(
      fmt::format("n{} will crash between persisting and sending (in either order) the next "
                  "Ready in which it leads and {}",
                  n->id, on_commit ? "commits" : "appends"));
}

void Cluster::Restart() {
  if (SimNode* n = RandomNode(false)) StartNode(*n);
}

void Cluster::Partition() {
  if (!rng_.OneIn(3)) net_.Heal();
  const int n = options_.nodes;
  SimNode* leader = Leader();
  switch (rng_.Uniform(5)) {
    case 0: {  // symmetric split into a minority and a majority
      std::vector<NodeId> ids;
      for (int i = 1; i <= n; ++i) ids.push_back(NodeId(i));
      rng_.Shuffle(ids.begin(), ids.end());
      ids.resize(rng_.Range(1, n / 2));
      net_.Split(ids);
      break;
    }
    case 1:  // isolate the leader both ways
      if (leader != nullptr) net_.Isolate(leader->id, true, true);
      break;
    case 2:  // the leader can talk but not hear, or hear but not talk
      if (leader != nullptr) {
        bool incoming = rng_.OneIn(2);
        net_.Isolate(leader->id, incoming, !incoming);
      }
      break;
    case 3:  // a few random one-way cuts
      for (int k = static_cast<int>(rng_.Range(1, n)); k > 0; --k) {
        net_.Cut(NodeId(rng_.Range(1, n)), NodeId(rng_.Range(1, n)));
      }
      break;
    default:  // a ring: with 5 nodes nobody reaches everyone
      net_.Ring();
      break;
  }
  Note("partition: " + net_.Describe());
}

void Cluster::ChangeMembership() {
  SimNode* leader = Leader();
  if (leader == nullptr) return;
  raft::ConfState cs = leader->raw->GetStatus().conf_state;
  auto has = [](const auto& list, uint64_t id) {
    return std::find(list.begin(), list.end(), id) != list.end();
  };
  std::vector<raft::ConfChange> options;
  auto add = [&](raft::ConfChangeType type, uint64_t id) {
    raft::ConfChange cc;
    cc.set_type(type);
    cc.set_node_id(id);
    options.push_back(cc);
  };
  for (auto& n : nodes_) {
    const uint64_t id = n->id.value();
    if (has(cs.learners(), id)) {
      add(raft::ADD_VOTER, id);  // promote
      add(raft::REMOVE_NODE, id);
    } else if (has(cs.voters(), id)) {
      // Removing the leader itself is allowed but rare.
      if (cs.voters_size() > 1 && (id != leader->id.value() || rng_.OneIn(5))) {
        add(raft::REMOVE_NODE, id);
      }
      if (cs.voters_size() > 1 && id != leader->id.value() && rng_.OneIn(4)) {
        add(raft::ADD_LEARNER, id);  // demote
      }
    } else {
      add(raft::ADD_LEARNER, id);  // re-add a removed node; it keeps its durable state
    }
  }
  if (options.empty()) return;
  raft::ConfChange cc = options[rng_.Uniform(options.size())];
  Input(*leader, [this, leader, cc] {
    Status s = leader->raw->ProposeConfChange(cc);
    Note(fmt::format("n{} proposes {} {}: {}", leader->id, raft::ConfChangeType_Name(cc.type()),
                     cc.node_id(), s.ToString()));
  });
}

void Cluster::TransferLeadership() {
  SimNode* leader = Leader();
  if (leader == nullptr) return;
  const auto& voters = leader->conf.voters();
  if (voters.empty()) return;
  NodeId target(voters[static_cast<int>(rng_.Uniform(voters.size()))]);
  // Ask the leader, or a follower that forwards the request.
  SimNode* asked = rng_.OneIn(3) ? RandomNode(true) : leader;
  Input(*asked, [this, asked, target] {
    asked->raw->TransferLeader(target);
    Note(fmt::format("n{} asked to transfer leadership to n{}", asked->id, target));
  });
}

// Snapshot a node's state machine at its applied index and discard a prefix of its log.
void Cluster::Compact() {
  // Mostly the leader, whose compacted log makes it send snapshots to followers behind it.
  SimNode* n = rng_.OneIn(2) ? Leader() : RandomNode(true);
  if (n == nullptr || n->busy()) return;
  const LogIndex applied = n->kv.applied();
  const LogIndex snap_index(n->durable.GetSnapshot()->metadata().index());
  if (applied <= snap_index) return;
  Result<raft::Snapshot> snap = n->durable.CreateSnapshot(applied, &n->conf, n->kv.Serialize());
  if (!snap.ok()) {
    Violate("driver", fmt::format("n{}: CreateSnapshot({}) failed: {}", n->id, applied,
                                  snap.status().ToString()));
    return;
  }
  // A restart takes its membership from GetInitialState, and its state machine from this
  // snapshot: the two must describe the same index.
  n->durable.SetConfState(n->conf);
  // Keep a few entries below the snapshot now and then, as a real store would.
  static constexpr uint64_t kKeep[] = {0, 0, 3, 20};
  uint64_t keep = std::min(kKeep[rng_.Uniform(4)], applied - snap_index);
  LogIndex upto = applied - keep;
  if (upto >= n->durable.FirstIndex()) {
    if (Status s = n->durable.Compact(upto); !s.ok()) {
      Violate("driver", fmt::format("n{}: Compact({}) failed: {}", n->id, upto, s.ToString()));
      return;
    }
  }
  ++stats_.compactions;
  Note(fmt::format("n{} snapshots at {} and compacts to {}", n->id, applied, upto));
}

void Cluster::ForceCampaign() {
  SimNode* n = RandomNode(true);
  if (n == nullptr) return;
  Input(*n, [this, n] {
    Status s = n->raw->Campaign();
    Note(fmt::format("n{} campaigns: {}", n->id, s.ToString()));
  });
}

}  // namespace micedb::sim
