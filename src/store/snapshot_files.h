// Region snapshots as files: the sender exports the region's keys of every data column family
// into SST files; the receiver stages them in a directory, then installs them.
//
// Installing is crash-safe: a "pending install" record naming the directory is written
// (synced) first; then the region's range is cleared, the files ingested, and the region's
// descriptor, applied/truncated index and log reset in one synced batch that also deletes the
// pending record. A node that crashes in between finds the record on restart and redoes the
// install from the same files (docs/store-format.md).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "micedb/raft.pb.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"
#include "store/transport.h"

namespace micedb::store {

// The column families a snapshot carries.
inline constexpr storage::Cf kDataCfs[] = {storage::Cf::kDefault, storage::Cf::kLock,
                                           storage::Cf::kWrite};

// Exports the engine-key range [start_key, end_key) of every data column family, as of
// `snapshot`, into `dir` (created if absent), named as SnapshotFilePath (store/transport.h)
// says. Returns the files written (an empty column family writes none). IoError on failure.
Result<std::vector<SnapshotFile>> ExportSnapshotFiles(storage::Engine* engine,
                                                      const storage::Snapshot* snapshot,
                                                      const std::string& start_key,
                                                      const std::string& end_key,
                                                      const std::string& dir);

// The pending-install record: the staging directory and the raft snapshot (metadata + our
// SnapshotDescriptor).
std::string EncodePendingInstall(const std::string& dir, const raft::Snapshot& snap);
Status DecodePendingInstall(std::string_view value, std::string* dir, raft::Snapshot* snap);

// What an install leaves behind, for the in-memory peer.
struct InstalledState {
  RegionDescriptor desc;
  ApplyState apply;
  std::vector<NodeAddress> addresses;
};

// Performs (or redoes) the install described by a pending record that is already durable.
// Removes the staging directory when done. Errors: Corruption for an unreadable record,
// IoError/Corruption from the engine (the record stays, so a restart retries).
Result<InstalledState> RunSnapshotInstall(storage::Engine* engine, uint64_t region,
                                          std::string_view pending,
                                          const raft::HardState& hard_state);

}  // namespace micedb::store
