// LeaseTable: the leader leases a store publishes for client threads (raft.md §7). The raft
// loop decides when a region's lease holds (Store::UpdateLease, lease.cc) and publishes it
// here with the commit index from the start of the round and the applied index; a client
// thread asks for a read grant, which it gets only while the lease holds and everything the
// leader had committed is applied.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "common/thread_annotations.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"

namespace micedb {
class Clock;
}

namespace micedb::store {

// A clock's monotonic and wall time read together (the wall read on both sides of the
// monotonic one, again if a preemption came between them). Between two readings both advance
// alike (NTP slews them alike) unless the wall clock was set, or the monotonic clock stood
// still while the wall clock went on: a paused VM whose host then set the guest's time.
struct ClockReading {
  int64_t mono_ns = 0;
  int64_t wall_ns = 0;
  // How much further the wall clock went than the monotonic clock since `before`.
  int64_t WallAheadOf(const ClockReading& before) const {
    return (wall_ns - before.wall_ns) - (mono_ns - before.mono_ns);
  }
};
ClockReading ReadClocks(const Clock* clock);

class LeaseTable {
 public:
  // What a lease read runs on: the region as the leader knows it, and one engine state.
  struct Grant {
    std::shared_ptr<const RegionDescriptor> desc;
    std::unique_ptr<storage::Snapshot> snapshot;  // null when `wait_ms` is set
    uint64_t wait_ms = 0;  // the gate said to retry after this long (nothing was read)
  };

  // Records that this node holds the lease of `desc`'s region until `until_ns` (the store's
  // clock), having published commit index `commit` before any message of the round left, and
  // applied up to `applied`; `now` is the time of publishing.
  void Publish(const RegionDescriptor& desc, int64_t until_ns, uint64_t commit, uint64_t applied,
               const ClockReading& now) EXCLUDES(mu_);
  // The region's lease is gone (lost, or the replica is about to be destroyed).
  void Erase(uint64_t region) EXCLUDES(mu_);
  void Clear() EXCLUDES(mu_);
  // The region's lease end as published (0: none).
  int64_t Until(uint64_t region) EXCLUDES(mu_);

  // A grant for a read of `region` at `now`, or nullopt when the lease does not hold, the
  // wall clock went more than `max_gap_ns` further than the monotonic one since the lease was
  // published (a freeze the loop has not seen yet), or an apply is pending (applied < commit:
  // a follower may already have served a ReadIndex read of what the leader committed). The
  // engine snapshot is taken under the lock, so a replica being destroyed (Erase first) is
  // never read.
  // `gate`, when given, runs once the lease is known to hold and before the snapshot is
  // taken: a nonzero answer (ms to wait) is returned as the grant's wait_ms, with no snapshot.
  std::optional<Grant> Acquire(uint64_t region, const ClockReading& now, int64_t max_gap_ns,
                               storage::Engine* engine,
                               const std::function<uint64_t()>& gate = nullptr) EXCLUDES(mu_);

 private:
  struct Lease {
    int64_t until_ns = 0;
    ClockReading published;
    uint64_t commit = 0;
    uint64_t applied = 0;
    std::shared_ptr<const RegionDescriptor> desc;
  };
  std::mutex mu_;
  std::map<uint64_t, Lease> leases_ GUARDED_BY(mu_);  // only regions led with a lease
};

}  // namespace micedb::store
