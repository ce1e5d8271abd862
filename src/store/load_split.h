// Load-based split (docs/sharding.md §1): the key at which a hot region's sampled requests
// divide in two halves. The samples come from the store's flow meter (FlowMeter sampling); the
// node's split checker decides when a region is hot and asks for the split.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace micedb::store {

// The sampled engine key that best halves `samples` (the requests' first keys): the one with
// the smallest difference between the samples below it and those at or above it, among the
// keys strictly inside the region (after `start`, before `end`; an empty `end` is the end of
// the keyspace). nullopt when there are fewer than `min_samples`, or when even the best key
// leaves the lighter side less than a quarter of them (the load is on one key, or a few
// adjacent ones: a split would not spread it).
std::optional<std::string> LoadSplitKey(std::vector<std::string> samples, std::string_view start,
                                        std::string_view end, size_t min_samples = 64);

}  // namespace micedb::store
