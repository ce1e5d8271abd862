// LeaseTable: the leader leases a store publishes for client threads (raft.md §7). The raft
// loop decides when a region's lease holds (Store::UpdateLeases, lease.cc) and publishes it
// here with the commit index from the start of the round and the applied index; a client
// thread asks for a read grant, which it gets only while the lease holds and everything the
// leader had committed is applied.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "common/thread_annotations.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"

namespace micedb::store {

class LeaseTable {
 public:
  // What a lease read runs on: the region as the leader knows it, and one engine state.
  struct Grant {
    std::shared_ptr<const RegionDescriptor> desc;
    std::unique_ptr<storage::Snapshot> snapshot;
  };

  // Records that this node holds the lease of `desc`'s region until `until_ns` (lease clock),
  // having published commit index `commit` before any message of the round left, and applied
  // up to `applied`.
  void Publish(const RegionDescriptor& desc, int64_t until_ns, uint64_t commit, uint64_t applied)
      EXCLUDES(mu_);
  // The region's lease is gone (lost, or the replica is about to be destroyed).
  void Erase(uint64_t region) EXCLUDES(mu_);
  void Clear() EXCLUDES(mu_);

  // A grant for a read of `region` at `now_ns`, or nullopt when the lease does not hold or an
  // apply is pending (applied < commit: a follower may already have served a ReadIndex read
  // of what the leader committed). The engine snapshot is taken under the lock, so a replica
  // being destroyed (Erase first) is never read.
  std::optional<Grant> Acquire(uint64_t region, int64_t now_ns, storage::Engine* engine)
      EXCLUDES(mu_);

 private:
  struct Lease {
    int64_t until_ns = 0;
    uint64_t commit = 0;
    uint64_t applied = 0;
    std::shared_ptr<const RegionDescriptor> desc;
  };
  std::mutex mu_;
  std::map<uint64_t, Lease> leases_ GUARDED_BY(mu_);  // only regions led with a lease
};

}  // namespace micedb::store
