// RegionCache: what a gateway knows of the regions: descriptors ordered by start key, with the
// leader last heard of. Filled from the local store's regions (later from the coordinator) and
// fixed by the errors region requests come back with (EpochNotMatch carries the current
// descriptors; NotLeader names the leader).
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/strong_id.h"
#include "common/thread_annotations.h"
#include "micedb/store.pb.h"

namespace micedb::router {

struct RegionRoute {
  store::RegionDescriptor desc;
  NodeId leader;  // invalid when unknown
};

class RegionCache {
 public:
  // The region whose range holds `engine_key`, in O(log n). nullopt when none is known.
  std::optional<RegionRoute> Locate(std::string_view engine_key) const EXCLUDES(mu_);
  std::optional<RegionRoute> Get(uint64_t region_id) const EXCLUDES(mu_);

  // Records `desc`. A cached region it overlaps is dropped when its epoch is not newer (same
  // version and conf_ver or older); when a cached overlapping region is newer, `desc` is stale
  // and ignored. An invalid `leader` keeps the leader known for the same region id.
  void Update(const store::RegionDescriptor& desc, NodeId leader = NodeId()) EXCLUDES(mu_);
  // The leader of a cached region changed (invalid: unknown).
  void SetLeader(uint64_t region_id, NodeId leader) EXCLUDES(mu_);
  // Forgets a region (its range is looked up afresh next time).
  void Invalidate(uint64_t region_id) EXCLUDES(mu_);
  size_t size() const EXCLUDES(mu_);

 private:
  // True when `a` is an older epoch than `b` (either counter behind, none ahead).
  static bool Older(const store::RegionEpoch& a, const store::RegionEpoch& b);
  void EraseLocked(uint64_t region_id) REQUIRES(mu_);

  mutable std::mutex mu_;
  std::map<std::string, RegionRoute, std::less<>> by_start_ GUARDED_BY(mu_);
  std::map<uint64_t, std::string> start_of_ GUARDED_BY(mu_);  // region id -> start key
};

}  // namespace micedb::router
