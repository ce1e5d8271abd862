#include "tests/sim/fault_profile.h"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>

namespace micedb::sim {
namespace {

using A = FaultAction;

void Set(FaultProfile* p, A a, int w) { p->weights[static_cast<size_t>(a)] = w; }

// A moderate amount of everything; the named mixes below shift the weights.
void Baseline(FaultProfile* p) {
  Set(p, A::kCrash, 4);
  Set(p, A::kCrashLeader, 3);
  Set(p, A::kCrashMidReady, 2);
  Set(p, A::kRestart, 10);
  Set(p, A::kPartition, 5);
  Set(p, A::kHeal, 5);
  Set(p, A::kMembership, 4);
  Set(p, A::kTransfer, 3);
  Set(p, A::kCompact, 4);
  Set(p, A::kCampaign, 1);
}

}  // namespace

std::string_view FaultActionName(FaultAction a) {
  switch (a) {
    case A::kCrash:
      return "crash";
    case A::kCrashLeader:
      return "crash-leader";
    case A::kCrashMidReady:
      return "crash-mid-ready";
    case A::kRestart:
      return "restart";
    case A::kPartition:
      return "partition";
    case A::kHeal:
      return "heal";
    case A::kMembership:
      return "membership";
    case A::kTransfer:
      return "transfer";
    case A::kCompact:
      return "compact";
    case A::kCampaign:
      return "campaign";
    case A::kCount:
      break;
  }
  return "?";
}

const std::array<std::string_view, 7>& ProfileNames() {
  static constexpr std::array<std::string_view, 7> kNames = {
      "calm", "lossy", "partitions", "crashes", "churn", "membership", "mixed"};
  return kNames;
}

FaultProfile DrawProfile(Random* rng, std::string_view name) {
  FaultProfile p;
  Baseline(&p);
  // "churn" has two slots: it is the mix that finds ordering bugs such as Figure 8's.
  static constexpr uint64_t kSlots[] = {0, 1, 2, 3, 4, 4, 5, 6};
  uint64_t kind = kSlots[rng->Uniform(std::size(kSlots))];
  for (size_t i = 0; i < ProfileNames().size(); ++i) {
    if (ProfileNames()[i] == name) kind = i;
  }
  switch (kind) {
    case 0:
      p.name = "calm";
      p.drop = 0.01;
      p.nemesis_gap_min = 100;
      p.nemesis_gap_max = 600;
      break;
    case 1:
      p.name = "lossy";
      p.drop = 0.15 + 0.1 * rng->NextDouble();
      p.duplicate = 0.1;
      p.long_delay = 0.2;
      p.long_delay_max = 120;
      break;
    case 2:
      p.name = "partitions";
      p.drop = 0.02;
      p.long_delay = 0.05;
      Set(&p, A::kPartition, 20);
      Set(&p, A::kHeal, 10);
      p.nemesis_gap_min = 30;
      p.nemesis_gap_max = 250;
      break;
    case 3:
      p.name = "crashes";
      p.drop = 0.02;
      Set(&p, A::kCrash, 12);
      Set(&p, A::kCrashLeader, 8);
      Set(&p, A::kCrashMidReady, 8);
      Set(&p, A::kRestart, 25);
      break;
    case 4:
      // Leader churn with partial replication: the schedule of the paper's Figure 8. Leaders
      // die soon after winning, often between persisting and sending, and append messages
      // carry one entry each, so a new leader's log is often only partly replicated.
      p.name = "churn";
      p.drop = 0.05 + 0.1 * rng->NextDouble();
      p.long_delay = 0.05;
      Set(&p, A::kCrash, 2);
      Set(&p, A::kCrashLeader, 10);
      Set(&p, A::kCrashMidReady, 150);
      Set(&p, A::kRestart, 35);
      Set(&p, A::kPartition, 4);
      Set(&p, A::kHeal, 6);
      Set(&p, A::kMembership, 0);
      Set(&p, A::kTransfer, 4);
      Set(&p, A::kCompact, 2);
      Set(&p, A::kCampaign, 10);
      p.nemesis_gap_min = 10;
      p.nemesis_gap_max = 80;
      p.client_gap_max = 8;
      p.election_tick = 5;  // short terms: more elections per run
      p.max_size_per_msg = 1;
      p.max_inflight_msgs = 2;
      break;
    case 5:
      p.name = "membership";
      p.drop = 0.03;
      p.duplicate = 0.02;
      Set(&p, A::kMembership, 25);
      Set(&p, A::kCompact, 12);
      Set(&p, A::kTransfer, 6);
      break;
    default:
      p.name = "mixed";
      p.drop = 0.05;
      p.duplicate = 0.03;
      p.long_delay = 0.08;
      p.nemesis_gap_min = 20;
      p.nemesis_gap_max = 150;
      break;
  }
  if (p.name != "churn") {
    constexpr uint64_t kSizes[] = {1, 256, 1 << 20};
    constexpr size_t kInflight[] = {4, 16, 256};
    p.max_size_per_msg = kSizes[rng->Uniform(3)];
    p.max_inflight_msgs = kInflight[rng->Uniform(3)];
  }
  p.max_inflight_bytes = rng->OneIn(4) ? 2048 : 0;
  p.pre_vote = !rng->OneIn(4);
  p.check_quorum = !rng->OneIn(4);
  p.lease_reads = p.check_quorum && rng->OneIn(4);
  p.client_gap_max = std::min<int>(p.client_gap_max, static_cast<int>(rng->Range(4, 30)));
  p.read_percent = static_cast<int>(rng->Range(10, 50));
  p.keys = static_cast<int>(rng->Range(1, 6));
  return p;
}

std::string FaultProfile::Describe() const {
  return fmt::format(
      "{} drop={:.2f} dup={:.2f} delay={:.2f} nemesis_gap=[{},{}] client_gap={} reads={}% "
      "keys={} election_tick={} max_msg={} inflight={} inflight_bytes={} pre_vote={} "
      "check_quorum={} lease_reads={} async_leader_persist={} lazy_commit={}",
      name, drop, duplicate, long_delay, nemesis_gap_min, nemesis_gap_max, client_gap_max,
      read_percent, keys, election_tick, max_size_per_msg, max_inflight_msgs, max_inflight_bytes,
      pre_vote, check_quorum, lease_reads, async_leader_persist, lazy_commit);
}

}  // namespace micedb::sim
