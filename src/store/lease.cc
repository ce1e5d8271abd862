// The leader lease: tick times, when a lease holds, and the table client threads read
// (raft.md §7).
#include "store/lease.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/logging.h"
#include "store/apply.h"
#include "store/errors.h"
#include "store/region_peer.h"
#include "store/store.h"

namespace micedb::store {

namespace {
spdlog::logger* Log() { return GetLogger("store"); }
}  // namespace

ClockReading ReadClocks(const Clock* clock) {
  constexpr int64_t kMaxSpreadNs = 1'000'000;
  ClockReading r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int64_t wall_before = clock->NowWallMicros() * 1000;
    r.mono_ns = clock->NowMonotonic().count();
    const int64_t wall_after = clock->NowWallMicros() * 1000;
    // The earlier wall reading: a preemption after it makes the wall look behind, never ahead.
    r.wall_ns = wall_before;
    if (wall_after - wall_before < kMaxSpreadNs) break;
  }
  return r;
}

void LeaseTable::Publish(const RegionDescriptor& desc, int64_t until_ns, uint64_t commit,
                         uint64_t applied, const ClockReading& now) {
  std::lock_guard<std::mutex> l(mu_);
  Lease& lease = leases_[desc.id()];
  lease.until_ns = until_ns;
  lease.published = now;
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

int64_t LeaseTable::Until(uint64_t region) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = leases_.find(region);
  return it == leases_.end() ? 0 : it->second.until_ns;
}

void LeaseTable::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  leases_.clear();
}

std::optional<LeaseTable::Grant> LeaseTable::Acquire(uint64_t region, const ClockReading& now,
                                                     int64_t max_gap_ns, storage::Engine* engine,
                                                     const std::function<uint64_t()>& gate) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = leases_.find(region);
  if (it == leases_.end() || now.mono_ns >= it->second.until_ns) return std::nullopt;
  // The monotonic clock may have stood still through a pause the loop has not noticed yet.
  if (now.WallAheadOf(it->second.published) > max_gap_ns) return std::nullopt;
  // What the leader committed may be applied and read on a follower (ReadIndex) before it is
  // applied here: until it is, reading here could go back in time.
  if (it->second.applied < it->second.commit) return std::nullopt;
  if (gate) {
    if (const uint64_t wait = gate(); wait != 0) return Grant{it->second.desc, nullptr, wait};
  }
  return Grant{it->second.desc, engine->GetSnapshot()};
}

int64_t Store::LeaseNowNs() const { return clock_->NowMonotonic().count(); }

void Store::CheckClockGap(const ClockReading& now) {
  const ClockReading before = last_wake_;
  last_wake_ = now;
  // The loop wakes at least once a tick; an election timeout away is a stall or a jump.
  const int64_t stall_ns = int64_t{options_.election_tick} * options_.tick_ms * 1'000'000;
  const int64_t ahead = now.WallAheadOf(before);
  const int64_t away = now.mono_ns - before.mono_ns;
  if (ahead <= gap_ns_ && away <= stall_ns) return;
  counters_.lease_suspensions++;
  if (options_.lease_reads) {
    Log()->warn(
        "the loop was away {} ms by its clock and {} ms by the wall clock: leases suspended "
        "until the next heartbeat round is answered",
        away / 1'000'000, (away + ahead) / 1'000'000);
  }
  // Only a round sent after the next tick renews a lease (LeaseUntil).
  for (auto& [id, p] : peers_) p->lease_floor_tick = p->node->Ticks() + 1;
  TouchAll();
}

void Store::TickPeer(RegionPeer* p, int64_t now_ns) {
  Touch(p);
  p->node->Tick();
  p->tick_ns[p->node->Ticks() % RegionPeer::kTickTimes] = now_ns;
}

int64_t Store::LeaseUntil(RegionPeer* p) const {
  // A sleeping leader gives up its lease (its reads wake it): the lease would run out soon
  // anyway, and the loop then skips the region (UpdateLease).
  if (!options_.lease_reads || p->sleep == RegionPeer::Sleep::kAsleep) return 0;
  std::optional<uint64_t> start = p->node->LeaseStart();
  // Only once the leader has applied an entry of its own term does its state hold every
  // write acknowledged by an earlier leader.
  if (start.has_value() && *start >= p->lease_floor_tick &&
      p->node->Ticks() - *start < RegionPeer::kTickTimes &&
      p->apply.applied_term() == p->node->CurrentTerm().value()) {
    return p->tick_ns[*start % RegionPeer::kTickTimes] + lease_ns_;
  }
  return 0;
}

void Store::UpdateLease(RegionPeer* p, bool round_start, const ClockReading& now) {
  if (!options_.lease_reads) return;
  if (p->sleep == RegionPeer::Sleep::kAsleep && p->lease_until_ns == 0) return;
  const int64_t until = LeaseUntil(p);
  // The commit index is published where it bounds every commit index sent so far: at the
  // start of a round, before its messages leave (later in the round only ReportPersisted
  // moves it, and what it moves leaves in the next round). Whatever moves it touches the
  // replica, so an untouched one's is still current.
  if (round_start) p->round_commit = p->node->Committed().value();
  const uint64_t commit = p->round_commit;
  const uint64_t applied = p->apply.applied_index();
  if (until == p->lease_until_ns &&
      (until == 0 || (commit == p->lease_commit && applied == p->lease_applied))) {
    return;
  }
  p->lease_until_ns = until;
  p->lease_commit = commit;
  p->lease_applied = applied;
  if (until == 0) {
    leases_.Erase(p->id());
  } else {
    leases_.Publish(p->desc, until, commit, applied, now);
  }
}

void Store::UpdateRoundLeases(const Round& r) {
  if (!options_.lease_reads) return;
  const ClockReading now = ReadClocks(clock_);
  for (const auto& w : r.work) UpdateLease(w.peer, /*round_start=*/false, now);
}

void Store::CheckUntouched() {
  // Debug builds: what Touch promises. A replica nothing reached since the last round has no
  // Ready, and its lease (and the commit index published with it) would not change.
  for (auto& [id, p] : peers_) {
    if (p->touched) continue;
    if (p->node->HasReady()) {
      StoreFatal(fmt::format("region {}: a Ready without a Touch", id));
    }
    if (!options_.lease_reads ||
        (p->sleep == RegionPeer::Sleep::kAsleep && p->lease_until_ns == 0)) {
      continue;
    }
    if (LeaseUntil(p.get()) != p->lease_until_ns ||
        (p->round_commit != UINT64_MAX && p->round_commit != p->node->Committed().value())) {
      StoreFatal(fmt::format("region {}: the lease moved without a Touch", id));
    }
  }
}

std::optional<region::RegionResponse> Store::ReadUnderLease(const region::RegionRequest& req) {
  // A transactional read looks for one-phase commits on their way once the lease is known to
  // hold and before its snapshot is taken: one that applies after the look cannot be below
  // its timestamp (txn/concurrency.h).
  std::function<uint64_t()> gate;
  if (req.has_txn() && IsTxnRead(req.txn())) {
    gate = [this, &req] {
      RegionDescriptor region;  // only its id: which state machine's hook
      region.set_id(req.header().region_id());
      return sm_->TxnReadWait(region, req.txn());
    };
  }
  std::optional<LeaseTable::Grant> grant =
      leases_.Acquire(req.header().region_id(), ReadClocks(clock_), gap_ns_, engine_, gate);
  if (!grant) return std::nullopt;
  if (grant->wait_ms != 0) {
    return ServerBusyResponse("a key read here is being committed; retry", grant->wait_ms);
  }
  // Read after the check: nothing another leader acknowledges can precede the check, nothing
  // any node has read is newer than the published commit index, and the state only moves
  // forward, so the result is that of a moment inside the read.
  counters_.reads++;
  counters_.lease_reads++;
  region::RegionResponse resp = ServeRead(sm_, *grant->desc, engine_, grant->snapshot.get(), req);
  if (resp.has_error()) counters_.requests_refused++;
  CountRead(grant->desc->id(), req, resp);
  return resp;
}

}  // namespace micedb::store
