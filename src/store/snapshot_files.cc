#include "store/snapshot_files.h"

#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "store/keys.h"
#include "store/snapshot_stage.h"

namespace micedb::store {

namespace fs = std::filesystem;
using storage::Cf;

std::string SnapshotFilePath(const std::string& dir, Cf cf, uint32_t n) {
  return (fs::path(dir) / fmt::format("{}-{}.sst", static_cast<int>(cf), n)).string();
}

Result<std::vector<SnapshotFile>> ExportSnapshotFiles(storage::Engine* engine,
                                                      const storage::Snapshot* snapshot,
                                                      const std::string& start_key,
                                                      const std::string& end_key,
                                                      const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", dir, ec.message()));
  std::vector<SnapshotFile> files;
  for (Cf cf : kRegionCfs) {
    CfBounds bounds = RegionCfBounds(cf, start_key, end_key);
    storage::ReadOptions ro;
    ro.lower_bound = std::move(bounds.begin);
    ro.upper_bound = std::move(bounds.end);
    ro.snapshot = snapshot;
    std::string path = SnapshotFilePath(dir, cf, 0);
    MICEDB_ASSIGN_OR_RETURN(storage::ExportStats stats, engine->ExportSst(cf, ro, path));
    if (stats.count > 0) files.push_back(SnapshotFile{cf, path});
  }
  return files;
}

std::string EncodePendingInstall(const PendingInstall& pending) {
  return pending.SerializeAsString();
}

Status DecodePendingInstall(std::string_view value, PendingInstall* pending) {
  if (!pending->ParseFromArray(value.data(), static_cast<int>(value.size())) ||
      pending->dir().empty()) {
    return Status::Corruption("pending install record does not parse");
  }
  return Status::OK();
}

Status VerifyStagedFiles(const std::string& dir,
                         const google::protobuf::RepeatedPtrField<SnapshotFileMeta>& files) {
  for (const SnapshotFileMeta& f : files) {
    const std::string path = SnapshotFilePath(dir, static_cast<Cf>(f.cf()), f.index());
    auto sum = FileChecksum(path);
    if (!sum.ok()) {
      if (sum.status().code() == StatusCode::kNotFound) {
        return Status::Corruption(fmt::format("staged snapshot file {} is missing", path));
      }
      return sum.status();
    }
    if (sum->first != f.size() || sum->second != f.crc32c()) {
      return Status::Corruption(
          fmt::format("staged snapshot file {} is damaged: {} bytes (crc {:08x}), expected {} "
                      "(crc {:08x})",
                      path, sum->first, sum->second, f.size(), f.crc32c()));
    }
  }
  return Status::OK();
}

namespace {

Status Step(const InstallStepHook& hook, InstallStep step) {
  return hook ? hook(step) : Status::OK();
}

// Gives up an install whose files are bad while the region's old data is intact: deletes the
// record (synced) and the staging directory.
Status AbandonInstall(storage::Engine* engine, uint64_t region, const std::string& dir) {
  storage::WriteBatch wb;
  wb.Delete(Cf::kRaft, PendingSnapshotKey(region));
  MICEDB_RETURN_IF_ERROR(engine->Write(wb, storage::WriteOptions{.sync = true}));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return Status::OK();
}

// Steps 3-5 of an install (docs/store-format.md) whose record is durable and whose files were
// checked.
Result<InstalledState> RunInstall(storage::Engine* engine, uint64_t region, PendingInstall pending,
                                  const raft::HardState& hard_state, const InstallStepHook& hook) {
  const raft::Snapshot& snap = pending.snapshot();
  SnapshotDescriptor sd;
  if (!sd.ParseFromString(snap.data())) {
    return Status::Corruption(fmt::format("region {}: snapshot descriptor does not parse", region));
  }
  InstalledState out;
  out.desc = sd.region();
  *out.desc.mutable_conf_state() = snap.metadata().conf_state();

  // From this write on the old data is gone; the record says so, so that a restart that finds
  // the files bad does not take the region's state for intact.
  storage::WriteBatch clear;
  for (Cf cf : kRegionCfs) {
    const CfBounds b = RegionCfBounds(cf, out.desc.start_key(), out.desc.end_key());
    clear.DeleteRange(cf, b.begin, b.end);
  }
  pending.set_range_cleared(true);
  clear.Put(Cf::kRaft, PendingSnapshotKey(region), EncodePendingInstall(pending));
  MICEDB_RETURN_IF_ERROR(engine->Write(clear, storage::WriteOptions{.sync = true}));
  MICEDB_RETURN_IF_ERROR(Step(hook, InstallStep::kRangeCleared));

  for (Cf cf : kRegionCfs) {
    std::map<uint32_t, std::string> paths;  // by file number
    for (const SnapshotFileMeta& f : pending.files()) {
      if (f.cf() == static_cast<uint32_t>(cf)) {
        paths[f.index()] = SnapshotFilePath(pending.dir(), cf, f.index());
      }
    }
    std::vector<std::string> ordered;
    ordered.reserve(paths.size());
    for (auto& [n, path] : paths) ordered.push_back(std::move(path));
    MICEDB_RETURN_IF_ERROR(engine->IngestSst(cf, ordered));
  }
  MICEDB_RETURN_IF_ERROR(Step(hook, InstallStep::kIngested));

  const uint64_t index = snap.metadata().index();
  const uint64_t term = snap.metadata().term();
  out.apply.set_applied_index(index);
  out.apply.set_applied_term(term);
  out.apply.set_truncated_index(index);
  out.apply.set_truncated_term(term);
  raft::HardState hs = hard_state;
  hs.set_term(std::max(hs.term(), term));
  hs.set_commit(std::max(hs.commit(), index));

  storage::WriteBatch done;
  done.Put(Cf::kRaft, RegionKey(region), out.desc.SerializeAsString());
  done.Put(Cf::kRaft, ApplyStateKey(region), out.apply.SerializeAsString());
  done.Put(Cf::kRaft, HardStateKey(region), hs.SerializeAsString());
  done.DeleteRange(Cf::kRaft, RaftLogPrefixBegin(region), RaftLogPrefixEnd(region));
  for (const auto& na : sd.addresses()) {
    done.Put(Cf::kRaft, NodeAddressKey(na.node_id()), na.SerializeAsString());
    out.addresses.push_back(na);
  }
  done.Delete(Cf::kRaft, PendingSnapshotKey(region));
  MICEDB_RETURN_IF_ERROR(engine->Write(done, storage::WriteOptions{.sync = true}));
  MICEDB_RETURN_IF_ERROR(Step(hook, InstallStep::kFinished));
  std::error_code ec;
  fs::remove_all(pending.dir(), ec);
  return out;
}

}  // namespace

Result<InstalledState> InstallStagedSnapshot(storage::Engine* engine, uint64_t region,
                                             const StagedSnapshot& staged,
                                             const raft::Snapshot& snap,
                                             const raft::HardState& hard_state,
                                             const InstallStepHook& hook) {
  PendingInstall pending;
  pending.set_dir(staged.dir);
  *pending.mutable_snapshot() = snap;
  for (const SnapshotFileMeta& f : staged.files) *pending.add_files() = f;
  Status ok = VerifyStagedFiles(pending.dir(), pending.files());
  if (!ok.ok()) {
    std::error_code ec;
    fs::remove_all(staged.dir, ec);
    return Status::Aborted(fmt::format("region {}: snapshot install given up, nothing changed: {}",
                                       region, ok.message()));
  }
  storage::WriteBatch mark;
  mark.Put(Cf::kRaft, PendingSnapshotKey(region), EncodePendingInstall(pending));
  MICEDB_RETURN_IF_ERROR(engine->Write(mark, storage::WriteOptions{.sync = true}));
  MICEDB_RETURN_IF_ERROR(Step(hook, InstallStep::kRecorded));
  return RunInstall(engine, region, std::move(pending), hard_state, hook);
}

Result<std::optional<InstalledState>> FinishPendingInstall(storage::Engine* engine, uint64_t region,
                                                           const InstallStepHook& hook) {
  auto value = engine->Get(Cf::kRaft, PendingSnapshotKey(region));
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kNotFound) return std::optional<InstalledState>();
    return value.status();
  }
  PendingInstall pending;
  MICEDB_RETURN_IF_ERROR(DecodePendingInstall(*value, &pending));
  Status files = VerifyStagedFiles(pending.dir(), pending.files());
  if (!files.ok()) {
    if (files.code() != StatusCode::kCorruption) return files;  // unreadable: try again later
    if (!pending.range_cleared()) {
      MICEDB_RETURN_IF_ERROR(AbandonInstall(engine, region, pending.dir()));
      return std::optional<InstalledState>();
    }
    return Status::Corruption(fmt::format(
        "region {}: an interrupted snapshot install cannot be finished and this replica's old "
        "data is already deleted: {}. Remove this node from the cluster (micedb node remove) "
        "and add it back as a new node with an empty data directory",
        region, files.message()));
  }
  raft::HardState hs;
  auto hs_value = engine->Get(Cf::kRaft, HardStateKey(region));
  if (hs_value.ok()) {
    if (!hs.ParseFromString(*hs_value)) {
      return Status::Corruption(fmt::format("region {}: hard state does not parse", region));
    }
  } else if (hs_value.status().code() != StatusCode::kNotFound) {
    return hs_value.status();
  }
  MICEDB_ASSIGN_OR_RETURN(InstalledState st,
                          RunInstall(engine, region, std::move(pending), hs, hook));
  return std::optional<InstalledState>(std::move(st));
}

}  // namespace micedb::store
