// Where a region that grew too big is split (the size and key-count split checker,
// docs/sharding.md §1): a walk over the region's records in key order, bounded, that trusts
// the engine's estimates only as far as the records bear them out.
#pragma once

#include <cstdint>
#include <string>

#include "micedb/store.pb.h"
#include "storage/engine.h"

namespace micedb::server {

struct SplitLimits {
  uint64_t split_size = 0;  // --region-split-size
  uint64_t split_keys = 0;  // --region-split-keys
};

// The key to split `desc` at, whose estimated size is `size` bytes and `keys` keys (by_size:
// the size passed the limit, else the key count did): the key where half the region (or one
// split's worth from its start, when it is much bigger) lies below, found by walking the raw
// keys, then the transactional keys (split only at a key's start, so that its versions stay
// together). Empty: do not split -- the walk found less than the limit in the region (the
// estimates were high: right after a split, RocksDB's estimates of the new halves can still
// count the whole), or more than twice it before half the estimate (far off the other way).
// Reads at most about the limit's worth of records (twice it when the estimates are off).
std::string FindSplitKey(storage::Engine* engine, const store::RegionDescriptor& desc,
                         uint64_t size, uint64_t keys, bool by_size, const SplitLimits& limits);

}  // namespace micedb::server
