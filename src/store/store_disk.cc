// The disk alarm in the loop (store/disk_alarm.h): failed writes hold the round, the free
// space is watched, and a held write is retried once the engine takes writes again.
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "store/errors.h"
#include "store/region_peer.h"
#include "store/store.h"

namespace micedb::store {

namespace {
spdlog::logger* Log() { return GetLogger("store"); }
constexpr uint64_t kMiB = uint64_t{1} << 20;
}  // namespace

bool Store::Persist(Round& r, storage::WriteBatch wb, bool sync, std::string_view what,
                    Round::Step next) {
  r.step = next;
  if (wb.empty()) return true;
  Status st = engine_->Write(wb, storage::WriteOptions{.sync = sync});
  if (st.ok()) {
    if (sync) counters_.sync_writes++;
    return true;
  }
  OnWriteFailed(st, what);
  r.pending = std::move(wb);
  r.pending_sync = sync;
  r.pending_what = std::string(what);
  return false;
}

void Store::OnWriteFailed(const Status& st, std::string_view what) {
  counters_.write_failures++;
  const DiskAlarm alarm = ClassifyWriteError(st);
  const std::string reason = fmt::format("the {} write failed: {}", what, st.ToString());
  if (disk_.Raise(alarm, reason)) {
    if (alarm == DiskAlarm::kNoSpace) {
      Log()->error(
          "NOSPACE alarm: {}. Writes are refused and the raft loop waits; the write is retried "
          "every {} ms and goes in once space is freed",
          reason, options_.disk_check_ms);
    } else {
      Log()->critical(
          "disk FAILED: {}. This node stops replicating and refuses requests (retrying a failed "
          "write or fsync is not known to be safe); fix the disk, then restart the node",
          reason);
    }
  }
  // The data may now lag what memory says is applied: no lease read may run until the round
  // carries on (the leases are published again then, from fresh heartbeat rounds).
  leases_.Clear();
  for (auto& [id, p] : peers_) p->lease_until_ns = 0;
  TouchAll();  // published again from the next round on
}

bool Store::RefusingWrites() const {
  return held_round_ != nullptr || disk_.alarm() != DiskAlarm::kNone;
}

region::RegionResponse Store::AlarmResponse(uint64_t region) const {
  if (disk_.alarm() == DiskAlarm::kFailed) {
    // Another replica can serve: the caller routes again.
    return NotLeaderResponse(region, 0);
  }
  std::string reason = disk_.reason();
  if (reason.empty()) reason = "a write is waiting for disk space";
  return NoSpaceResponse(reason);
}

void Store::HoldWork(int64_t now) {
  for (auto& [id, p] : peers_) {
    for (auto& [command, pr] : p->proposing) {
      counters_.writes_refused_no_space++;
      pr.done(AlarmResponse(id));
    }
    p->proposing.clear();
    // Reads need the raft loop (ReadIndex) or a lease: another replica serves them.
    for (auto& r : p->reading) r.done(NotLeaderResponse(id, 0));
    p->reading.clear();
  }
  if (now >= next_tick_ms_) {
    // No raft tick: a held store is like a paused process (its leases are gone already).
    next_tick_ms_ = std::max(next_tick_ms_ + options_.tick_ms, now + 1);
    CheckTimeouts(now);
    // The held round's applied entries are committed and will be applied once the write goes
    // in, but their clients are told after the request timeout that the outcome is unknown.
    if (held_round_ && !held_round_->replies.empty() &&
        now >= held_round_->started_ms + options_.request_timeout_ms) {
      for (auto& [done, result] : held_round_->replies) {
        counters_.proposals_failed++;
        done(
            TimeoutResponse("the disk refuses writes; the write is committed and will be "
                            "applied once space is freed"));
      }
      held_round_->replies.clear();
    }
  }
}

void Store::CheckDisk() {
  if (disk_.alarm() == DiskAlarm::kFailed) return;
  if (options_.free_bytes) {
    auto free = options_.free_bytes();
    if (free.ok() && *free < options_.min_free_bytes) {
      std::string reason =
          fmt::format("{} MiB free on the data directory's disk, below the {} MiB kept in reserve",
                      *free / kMiB, options_.min_free_bytes / kMiB);
      if (disk_.Raise(DiskAlarm::kNoSpace, reason)) {
        Log()->error("NOSPACE alarm: {}. Writes are refused until space is freed", reason);
      }
      return;
    }
    if (!free.ok()) Log()->warn("cannot tell the free disk space: {}", free.status().ToString());
  }
  if (disk_.alarm() == DiskAlarm::kNone && !held_round_) return;
  // RocksDB refuses writes after a failed one until it is resumed (its own recovery from a full
  // disk answers Busy meanwhile).
  if (Status st = engine_->Resume(); !st.ok()) {
    Log()->debug("engine not writable yet: {}", st.ToString());
    return;
  }
  if (held_round_) {
    std::unique_ptr<Round> r = std::move(held_round_);
    if (!ContinueRound(*r)) {
      held_round_ = std::move(r);
      return;
    }
  }
  // Replicas whose removal could not be written are deleted now.
  std::vector<RegionPeer*> removed;
  for (auto& [id, p] : peers_) {
    if (p->removed) removed.push_back(p.get());
  }
  for (RegionPeer* p : removed) {
    if (!DestroyPeer(p)) return;
  }
  if (held_round_ || sync_failing_.load()) return;
  if (disk_.ClearNoSpace()) Log()->warn("NOSPACE alarm cleared: writes are accepted again");
}

}  // namespace micedb::store
