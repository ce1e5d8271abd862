#include "server/split_key.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string_view>

#include "kv/value_format.h"
#include "store/keys.h"
#include "txn/mvcc.h"

namespace micedb::server {

std::string FindSplitKey(storage::Engine* engine, const store::RegionDescriptor& desc,
                         uint64_t size, uint64_t keys, bool by_size, const SplitLimits& limits) {
  // Half the region, or one split's worth from its start when it is much bigger (the rest is
  // split again later): the read is bounded either way.
  const uint64_t want_bytes = std::min(size / 2, limits.split_size);
  const uint64_t want_keys = std::min(keys / 2, limits.split_keys);
  uint64_t bytes = 0, count = 0;
  std::optional<std::string> found;
  // The region really holds more than the limit (not only by the estimates).
  auto confirmed = [&] {
    return by_size ? bytes >= limits.split_size : count >= limits.split_keys;
  };
  // Walks the records of one keyspace in the region, in key order, adding them up: the split
  // key is where half is reached; the walk goes on until the records confirm the region is
  // over the limit (true), or gives up when the estimates were far off (found reset). Raw
  // keys are split anywhere (each is one record); a transactional key only at its start E(K),
  // so that its versions stay together (docs/transactions.md §1). Other records below them
  // (before the dedup column family existed, request records lay under 'd') are not looked
  // at, and a split key must be a key the router can name.
  auto walk = [&](storage::Cf cf, std::string_view space_begin, std::string_view space_end) {
    std::string lower = std::max(desc.start_key(), std::string(space_begin));
    std::string upper = std::min(store::EngineRangeEnd(desc.end_key()), std::string(space_end));
    if (lower >= upper) return false;
    storage::ReadOptions ro;
    ro.lower_bound = std::move(lower);
    ro.upper_bound = std::move(upper);
    // Transactional values longer than a write record holds live in `default` under the
    // same E(K): counted as the walk passes their keys.
    std::unique_ptr<storage::Iterator> values;
    if (cf == storage::Cf::kWrite) {
      values = engine->NewIterator(storage::Cf::kDefault, ro);
      values->SeekToFirst();
    }
    // Adds the long values of the keys below `below` (empty: all that are left).
    auto values_below = [&](std::string_view below) {
      for (; values && values->Valid(); values->Next()) {
        std::string_view vkey;
        uint64_t ts = 0;
        if (txn::SplitTs(values->key(), &vkey, &ts) && !below.empty() && vkey >= below) break;
        bytes += values->key().size() + values->value().size();
      }
    };
    auto it = engine->NewIterator(cf, ro);
    std::string last;  // the transactional key whose versions are being walked
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view key = it->key();
      bytes += it->key().size() + it->value().size();
      if (cf == storage::Cf::kWrite) {
        uint64_t ts = 0;
        if (!txn::SplitTs(it->key(), &key, &ts)) continue;
        if (key == last) continue;  // another version of the same key: no boundary here
        last.assign(key);
        values_below(key);
      }
      if (!found && key > desc.start_key() &&
          (by_size ? bytes >= want_bytes : count >= want_keys)) {
        found = std::string(key);
      }
      ++count;
      if (found && confirmed()) return true;
      // The estimates were far off (deleted data not compacted yet): give up, not read on.
      if (bytes > 2 * limits.split_size || count > 2 * limits.split_keys) {
        found.reset();
        return true;
      }
    }
    values_below({});
    return found && confirmed();
  };
  const std::string raw_begin(1, kv::kRawKeyPrefix);
  const std::string raw_end(1, static_cast<char>(kv::kRawKeyPrefix + 1));
  if (!walk(storage::Cf::kDefault, raw_begin, raw_end)) {
    walk(storage::Cf::kWrite, std::string(1, txn::kTxnPrefix), txn::kTxnKeysEnd);
  }
  // Not confirmed at the end of the walks: the whole region is under the limit.
  return found && confirmed() ? *found : std::string();
}

}  // namespace micedb::server
