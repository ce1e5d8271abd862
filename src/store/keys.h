// Keys of the per-region records a store keeps in the `raft` column family. The layout is
// written down in docs/store-format.md:
//   'L' region(8, big-endian) index(8, big-endian) -> masked crc32c(4) + raft.Entry
//   'H' region                                    -> raft.HardState
//   'A' region                                    -> store.ApplyState
//   'R' region                                    -> store.RegionDescriptor
//   'P' region                                    -> store.PendingInstall (snapshot install)
//   'T' region                                    -> tombstone (removed, or merged away)
//   'E' region                                    -> store.RegionEpoch of the last snapshot
//                                                    installed (docs/sharding.md §2)
//   'N' node(8)                                   -> store.NodeAddress
//   'I'                                           -> store.StoreIdent (this directory's owner)
//   'K' node(8)                                   -> fixed64 incarnation met (store/identity.h)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/cf.h"
#include "storage/write_batch.h"

namespace micedb::store {

std::string RaftLogKey(uint64_t region, uint64_t index);
// The first log key of `region` (index 0) and the bound just past its last.
std::string RaftLogPrefixBegin(uint64_t region);
std::string RaftLogPrefixEnd(uint64_t region);
std::string HardStateKey(uint64_t region);
std::string ApplyStateKey(uint64_t region);
std::string RegionKey(uint64_t region);
std::string PendingSnapshotKey(uint64_t region);
std::string TombstoneKey(uint64_t region);
// The epoch (store.RegionEpoch) of the last snapshot installed for the region here, written
// before the install: a merge's rollback may rely only on epochs this replica applied from its
// log (docs/sharding.md §2).
std::string SnapshotEpochKey(uint64_t region);
// Puts `tombstone` as the region's tombstone and deletes the rest of its raft-family state
// (descriptor, apply and hard state, log, snapshot epoch) into `wb`.
void BuryReplica(uint64_t region, const std::string& tombstone, storage::WriteBatch* wb);
std::string NodeAddressKey(uint64_t node);
inline constexpr std::string_view kStoreIdentKey = "I";
std::string PeerIncarnationKey(uint64_t node);
bool DecodePeerIncarnationKey(std::string_view key, uint64_t* node);

// Decodes the index of a key made by RaftLogKey; false if it is not one.
bool DecodeRaftLogKey(std::string_view key, uint64_t* region, uint64_t* index);
// Decodes the region of a key made by RegionKey; false if it is not one.
bool DecodeRegionKey(std::string_view key, uint64_t* region);

// The coordinator's region (src/coordinator, docs/coordinator.md): a reserved id, and a reserved
// engine range above every data key (a data region ending at +infinity ends at "\xff" in the
// engine, EngineRangeEnd), so no data region ever covers the coordinator's state.
inline constexpr uint64_t kMetaRegionId = 2;
inline constexpr std::string_view kMetaRangeStart = "\xffm";
inline constexpr std::string_view kMetaRangeEnd = "\xffn";
inline bool IsMetaRegion(uint64_t region) { return region == kMetaRegionId; }

// Engine key bounds of a region's data: [start, end) over user ranges; an empty end_key means
// "to the end of the keyspace", for which EngineRangeEnd returns a bound above every data key.
std::string EngineRangeEnd(std::string_view end_key);

// The at-most-once records of writes (Cf::kDedup, docs/kv-format.md): a write's record sits
// beside its first key (its anchor: the region's start key for a keyless write), so that it
// moves with that key when a region splits or merges, and travels in the region's snapshots.
// The key is memcomparable: AppendBytes(anchor) + big-endian request_ts_ms + request_id, so
// the records of every anchor inside [start, end) lie inside DedupBounds(start, end).
std::string DedupKey(std::string_view anchor, int64_t request_ts_ms, uint64_t request_id);
// Decodes the request time of a DedupKey; false when `key` is not one.
bool DecodeDedupKeyTime(std::string_view key, int64_t* request_ts_ms);

// `key` for logs and messages: printable ASCII as it is, other bytes as \xNN, in quotes.
std::string PrintableKey(std::string_view key);

// Where a region [start_key, end_key) (engine keys; end empty = +infinity) keeps its keys in
// column family `cf`: the range itself for data, DedupKey's image of it for Cf::kDedup.
struct CfBounds {
  std::string begin;
  std::string end;
};
CfBounds RegionCfBounds(storage::Cf cf, std::string_view start_key, std::string_view end_key);

}  // namespace micedb::store
