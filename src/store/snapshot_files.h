// Region snapshots as files: the sender exports the region's keys of every data column family
// into SST files; the receiver stages them durably in a directory (store/snapshot_stage.h),
// then installs them.
//
// Installing is crash-safe (docs/store-format.md, "Snapshots"): the staged files are checked
// against their CRC32Cs, then a "pending install" record naming the directory, the snapshot
// and every file with its checksum is written (synced); the region's range is cleared (in the
// same synced write, the record notes that the old data is gone), the files ingested, and the
// region's descriptor, applied/truncated index and log reset in one synced batch that also
// deletes the record. A node that crashes in between finds the record on restart, checks the
// files again and redoes the install from them. A listed file that is missing or damaged is
// never taken for an empty column family.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "micedb/raft.pb.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"
#include "store/transport.h"

namespace micedb::store {

// The column families of a region's data: what replicas agree on, entry by entry.
inline constexpr storage::Cf kDataCfs[] = {storage::Cf::kDefault, storage::Cf::kLock,
                                           storage::Cf::kWrite};
// The column families a snapshot carries, a replica removal deletes and an install replaces:
// the data and the at-most-once records (whose removal each replica schedules itself, so they
// are not compared between replicas).
inline constexpr storage::Cf kRegionCfs[] = {storage::Cf::kDefault, storage::Cf::kLock,
                                             storage::Cf::kWrite, storage::Cf::kDedup};

// Exports the region [start_key, end_key) (RegionCfBounds) of every kRegionCfs family, as of
// `snapshot`, into `dir` (created if absent), named as SnapshotFilePath (store/transport.h)
// says. Returns the files written (an empty column family writes none). IoError on failure.
Result<std::vector<SnapshotFile>> ExportSnapshotFiles(storage::Engine* engine,
                                                      const storage::Snapshot* snapshot,
                                                      const std::string& start_key,
                                                      const std::string& end_key,
                                                      const std::string& dir);

// The pending-install record ('P'): a serialized PendingInstall.
std::string EncodePendingInstall(const PendingInstall& pending);
Status DecodePendingInstall(std::string_view value, PendingInstall* pending);

// Checks that every file in `files` lies in `dir` (at SnapshotFilePath) with its length and
// CRC32C. Corruption naming the first file that is missing, short or damaged; IoError when one
// cannot be read.
Status VerifyStagedFiles(const std::string& dir,
                         const google::protobuf::RepeatedPtrField<SnapshotFileMeta>& files);

// What an install leaves behind, for the in-memory peer.
struct InstalledState {
  RegionDescriptor desc;
  ApplyState apply;
  std::vector<NodeAddress> addresses;
};

// The durable steps of an install, in order.
enum class InstallStep {
  kRecorded,      // the pending-install record is written
  kRangeCleared,  // the region's old data is deleted (and the record says so)
  kIngested,      // the staged files are ingested
  kFinished,      // the final batch (descriptor, apply state, log reset, record deleted)
};

// A test seam: called after each step once it is durable. A non-OK status stops the install
// right there, as a crash would, and is returned (nothing is undone).
using InstallStepHook = std::function<Status(InstallStep)>;

// Installs a received snapshot: checks the staged files, writes the pending-install record
// (synced), then clears, ingests and writes the final batch; removes the staging directory.
// Errors: Aborted when a staged file is missing or damaged -- nothing was changed (no record
// written) and the staging directory is removed; Corruption for a snapshot that does not
// parse; IoError/Corruption from the engine after the record is written (the record stays, so
// a restart redoes the install).
Result<InstalledState> InstallStagedSnapshot(storage::Engine* engine, uint64_t region,
                                             const StagedSnapshot& staged,
                                             const raft::Snapshot& snap,
                                             const raft::HardState& hard_state,
                                             const InstallStepHook& hook = {});

// At start-up, before the region's raft node reads its state: finishes an install that a crash
// interrupted, if `region` has a pending-install record, checking the staged files first.
// Returns the installed state, or nullopt when there was no record or the install was given up:
// a listed file was missing or damaged while the region's old data was still intact, so the
// record and the staging directory are removed and the region keeps its old state (its raft
// log and hard state untouched; the leader sends a fresh snapshot when it finds the replica
// behind). Errors: Corruption naming the file when the files are bad after the old data was
// deleted -- the replica cannot be rebuilt here and must not serve; Corruption for a record
// that does not parse; IoError/Corruption from the engine (the record stays).
Result<std::optional<InstalledState>> FinishPendingInstall(storage::Engine* engine, uint64_t region,
                                                           const InstallStepHook& hook = {});

}  // namespace micedb::store
