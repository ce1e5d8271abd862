// FaultProfile: how hostile one simulation run is. Each seed draws a profile (a named mix such
// as "churn" or "lossy", plus Raft configuration knobs), so the seeds together cover calm runs,
// lossy networks, partitions, crash storms, leader churn and membership churn.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/random.h"

namespace micedb::sim {

// What the nemesis can do; one is drawn by weight at each nemesis event.
enum class FaultAction {
  kCrash,          // crash a random node
  kCrashLeader,    // crash the current leader
  kCrashMidReady,  // crash a node after it persists its next Ready but before it sends
  kRestart,        // restart a crashed node
  kPartition,      // cut links: symmetric split, isolation, one-way cuts or a ring
  kHeal,           // restore every link
  kMembership,     // propose a membership change at the leader
  kTransfer,       // ask for a leadership transfer
  kCompact,        // snapshot a node's state machine and compact its log
  kCampaign,       // make a node campaign now
  kCount,
};

std::string_view FaultActionName(FaultAction a);

struct FaultProfile {
  std::string name;

  // Per message, while faults are on.
  double drop = 0;          // lost
  double duplicate = 0;     // delivered twice
  double long_delay = 0;    // held back by up to long_delay_max (so reordered)
  int long_delay_max = 60;  // virtual time units
  // One nemesis action every [nemesis_gap_min, nemesis_gap_max] time units.
  int nemesis_gap_min = 20;
  int nemesis_gap_max = 200;
  std::array<int, static_cast<size_t>(FaultAction::kCount)> weights{};
  // One client operation every [1, client_gap_max] time units; read_percent of them are
  // ReadIndex reads, the rest writes through the log.
  int client_gap_max = 20;
  int read_percent = 30;
  int keys = 4;

  // Raft configuration of every node.
  int election_tick = 10;
  int heartbeat_tick = 2;
  uint64_t max_size_per_msg = 1 << 20;
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 0;
  bool pre_vote = true;
  bool check_quorum = true;
  // Leader-lease reads. Their safety assumes bounded clock drift, so in such runs every node's
  // clock runs at the same rate (otherwise each node ticks every 9 to 11 time units).
  bool lease_reads = false;
  // raft::Config::async_leader_persist: a leader counts its own log only once told it is
  // durable, which the driver tells it some time after persisting (kPersistReport), as the
  // store's sync thread does. Chosen from the seed without drawing from the run's generator,
  // so that the rest of a seed's run is what it was before the option existed.
  bool async_leader_persist = false;
  // raft::Config::lazy_commit, chosen from the seed the same way.
  bool lazy_commit = false;

  int weight(FaultAction a) const { return weights[static_cast<size_t>(a)]; }
  // One line, e.g. "churn drop=0.05 dup=0.02 ... pre_vote=1".
  std::string Describe() const;
};

// The named mixes, in the order DrawProfile picks from.
const std::array<std::string_view, 7>& ProfileNames();

// Draws the profile of one run: its mix (unless `name` forces one) and its knobs.
FaultProfile DrawProfile(Random* rng, std::string_view name = "");

}  // namespace micedb::sim
