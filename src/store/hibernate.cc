// Hibernation (docs/sharding.md §5): a region with nothing to do stops being ticked on every
// replica, so that a store with thousands of idle regions spends next to nothing on them; store
// pings keep each sleeping follower watching its leader's store.
//
// Safety rests on one fact: not ticking only makes a replica slower to act. A follower's vote
// promise is counted in its own ticks, so a sleeping follower keeps it longer in real time; a
// leader's lease is anchored on the real time of the heartbeat round a quorum answered, so it
// runs out while the leader sleeps, and a woken leader confirms reads with a new round.
#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "store/region_peer.h"
#include "store/store.h"

namespace micedb::store {

namespace {
spdlog::logger* Log() { return GetLogger("store"); }

using Sleep = RegionPeer::Sleep;

bool Member(const RegionDescriptor& d, uint64_t id) {
  const auto& cs = d.conf_state();
  return std::find(cs.voters().begin(), cs.voters().end(), id) != cs.voters().end() ||
         std::find(cs.learners().begin(), cs.learners().end(), id) != cs.learners().end();
}

}  // namespace

bool Store::HasWork(const RegionPeer* p) {
  return !p->proposals.empty() || !p->proposing.empty() || !p->reading.empty() ||
         !p->reads_waiting_index.empty() || !p->reads_waiting_apply.empty() ||
         p->apply.applied_index() != p->node->Committed().value();
}

void Store::UpdateSleep(RegionPeer* p) {
  if (!options_.hibernate || p->sleep == Sleep::kAsleep) return;
  if (p->soft.role != raft::Role::kLeader || HasWork(p) || !p->node->Quiet() ||
      p->gone_conf_ver != 0 || p->removed) {
    if (p->sleep == Sleep::kAsking) {
      p->sleep = Sleep::kAwake;
      p->sleep_acks.clear();
    }
    p->quiet_ticks = 0;
    return;
  }
  if (p->quiet_ticks == 0) p->quiet_reads = flow_.KeysRead(p->id());
  const int needed =
      options_.hibernate_ticks > 0 ? options_.hibernate_ticks : 2 * options_.election_tick;
  if (p->sleep != Sleep::kAwake || ++p->quiet_ticks < needed) return;
  // Reads under the lease never reach this loop: a region read that way is not idle.
  if (const uint64_t reads = flow_.KeysRead(p->id()); reads != p->quiet_reads) {
    p->quiet_reads = reads;
    p->quiet_ticks = 1;
    return;
  }
  p->sleep = Sleep::kAsking;
  p->sleep_acks.clear();
  // A region with no other member has no one to ask.
  const auto& cs = p->desc.conf_state();
  if (cs.voters_size() + cs.learners_size() <= 1) FallAsleep(p);
}

void Store::FallAsleep(RegionPeer* p) {
  p->sleep = Sleep::kAsleep;
  p->quiet_ticks = 0;
  counters_.sleeps++;
  Touch(p);  // its lease ends (LeaseUntil)
}

void Store::OnSleepMessage(RegionPeer* p, const raft::Message& m, bool stepped) {
  if (!m.hibernate()) {
    if (!stepped && p->sleep != Sleep::kAwake) Wake(p);
    return;
  }
  if (m.type() == raft::MSG_HEARTBEAT_RESP) {
    // A member stopped. Counted only while asking, in this leader's term.
    if (!stepped || p->sleep != Sleep::kAsking || p->soft.role != raft::Role::kLeader ||
        m.term() != p->node->CurrentTerm().value() || !Member(p->desc, m.from())) {
      return;
    }
    if (std::find(p->sleep_acks.begin(), p->sleep_acks.end(), m.from()) == p->sleep_acks.end()) {
      p->sleep_acks.push_back(m.from());
    }
    const auto& cs = p->desc.conf_state();
    if (p->sleep_acks.size() + 1 >=
        static_cast<size_t>(cs.voters_size()) + static_cast<size_t>(cs.learners_size())) {
      FallAsleep(p);
    }
    return;
  }
  if (m.type() != raft::MSG_HEARTBEAT || !stepped) return;
  // Asked by the leader it follows (once stepped, the heartbeat made it so): stop, unless
  // something here still waits.
  if (p->sleep == Sleep::kAsleep || HasWork(p)) return;
  const raft::NodeStatus st = p->node->GetStatus();
  if (st.role != raft::Role::kFollower || st.leader.value() != m.from()) return;
  FallAsleep(p);
}

void Store::Wake(RegionPeer* p) {
  Touch(p);  // every caller goes on to call into the raft node
  p->quiet_ticks = 0;
  if (p->sleep == Sleep::kAwake) return;
  const bool was_asleep = p->sleep == Sleep::kAsleep;
  p->sleep = Sleep::kAwake;
  p->sleep_acks.clear();
  if (!was_asleep) return;
  counters_.wakes++;
  p->node->Woken();
}

void Store::CheckSleepers(int64_t now_ms) {
  const int64_t silent_ms = int64_t{options_.election_tick} * options_.tick_ms;
  const uint64_t self = options_.node_id.value();
  std::set<uint64_t> ping;
  for (auto& [id, p] : peers_) {
    if (p->sleep != Sleep::kAsleep) continue;
    if (p->soft.role == raft::Role::kLeader) {
      for (uint64_t v : p->desc.conf_state().voters()) ping.insert(v);
      for (uint64_t l : p->desc.conf_state().learners()) ping.insert(l);
      continue;
    }
    const uint64_t leader = p->soft.leader.value();
    auto heard = heard_ms_.find(leader);
    if (leader != 0 && heard != heard_ms_.end() && now_ms - heard->second < silent_ms) continue;
    // The leader's store has said nothing for an election timeout: tick again, so that this
    // replica campaigns as usual if the leader is gone.
    Log()->debug("region {}: node {} (its leader) silent for {} ms: waking", id, leader,
                 heard == heard_ms_.end() ? -1 : now_ms - heard->second);
    counters_.silent_leader_wakes++;
    Wake(p.get());
  }
  ping.erase(self);
  if (ping.empty()) return;
  std::vector<raft::Message> out;
  out.reserve(ping.size());
  for (uint64_t to : ping) {
    raft::Message m;
    m.set_type(raft::MSG_HEARTBEAT);
    m.set_from(self);
    m.set_to(to);
    m.set_region_id(0);  // a store ping: no region's
    out.push_back(std::move(m));
  }
  counters_.pings_sent += out.size();
  transport_->SendBatch(std::move(out));
}

}  // namespace micedb::store
