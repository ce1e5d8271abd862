// The leader lease: tick times, when a lease holds, and the table client threads read
// (raft.md §7).
#include "store/lease.h"

#include "store/apply.h"
#include "store/region_peer.h"
#include "store/store.h"

namespace micedb::store {

void LeaseTable::Publish(const RegionDescriptor& desc, int64_t until_ns, uint64_t commit,
                         uint64_t applied) {
  std::lock_guard<std::mutex> l(mu_);
  Lease& lease = leases_[desc.id()];
  lease.until_ns = until_ns;
  lease.commit = commit;
  lease.applied = applied;
  // Membership changes and splits bump the epoch.
  if (!lease.desc || lease.desc->epoch().conf_ver() != desc.epoch().conf_ver() ||
      lease.desc->epoch().version() != desc.epoch().version()) {
    lease.desc = std::make_shared<const RegionDescriptor>(desc);
  }
}

void LeaseTable::Erase(uint64_t region) {
  std::lock_guard<std::mutex> l(mu_);
  leases_.erase(region);
}

void LeaseTable::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  leases_.clear();
}

std::optional<LeaseTable::Grant> LeaseTable::Acquire(uint64_t region, int64_t now_ns,
                                                     storage::Engine* engine) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = leases_.find(region);
  if (it == leases_.end() || now_ns >= it->second.until_ns) return std::nullopt;
  // What the leader committed may be applied and read on a follower (ReadIndex) before it is
  // applied here: until it is, reading here could go back in time.
  if (it->second.applied < it->second.commit) return std::nullopt;
  return Grant{it->second.desc, engine->GetSnapshot()};
}

int64_t Store::LeaseNowNs() const { return lease_clock_->NowMonotonic().count(); }

void Store::TickPeer(RegionPeer* p, int64_t now_ns) {
  p->node->Tick();
  p->tick_ns[p->node->Ticks() % RegionPeer::kTickTimes] = now_ns;
}

int64_t Store::LeaseUntil(RegionPeer* p) const {
  if (!options_.lease_reads) return 0;
  std::optional<uint64_t> start = p->node->LeaseStart();
  // Only once the leader has applied an entry of its own term does its state hold every
  // write acknowledged by an earlier leader.
  if (start.has_value() && p->node->Ticks() - *start < RegionPeer::kTickTimes &&
      p->apply.applied_term() == p->node->CurrentTerm().value()) {
    return p->tick_ns[*start % RegionPeer::kTickTimes] + lease_ns_;
  }
  return 0;
}

void Store::UpdateLeases(bool round_start) {
  if (!options_.lease_reads) return;
  for (auto& [id, p] : peers_) {
    const int64_t until = LeaseUntil(p.get());
    // The commit index is published where it bounds every commit index sent so far: at the
    // start of a round, before its messages leave (later in the round only ReportPersisted
    // moves it, and what it moves leaves in the next round).
    if (round_start) p->round_commit = p->node->Committed().value();
    const uint64_t commit = p->round_commit;
    const uint64_t applied = p->apply.applied_index();
    if (until == p->lease_until_ns &&
        (until == 0 || (commit == p->lease_commit && applied == p->lease_applied))) {
      continue;
    }
    p->lease_until_ns = until;
    p->lease_commit = commit;
    p->lease_applied = applied;
    if (until == 0) {
      leases_.Erase(id);
    } else {
      leases_.Publish(p->desc, until, commit, applied);
    }
  }
}

std::optional<region::RegionResponse> Store::ReadUnderLease(const region::RegionRequest& req) {
  std::optional<LeaseTable::Grant> grant =
      leases_.Acquire(req.header().region_id(), LeaseNowNs(), engine_);
  if (!grant) return std::nullopt;
  // Read after the check: nothing another leader acknowledges can precede the check, nothing
  // any node has read is newer than the published commit index, and the state only moves
  // forward, so the result is that of a moment inside the read.
  counters_.reads++;
  counters_.lease_reads++;
  region::RegionResponse resp =
      ServeRead(sm_, *grant->desc, engine_, grant->snapshot.get(), req);
  if (resp.has_error()) counters_.requests_refused++;
  return resp;
}

}  // namespace micedb::store
