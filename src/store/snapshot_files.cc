#include "store/snapshot_files.h"

#include <filesystem>

#include <fmt/format.h>

#include "store/keys.h"

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
  for (Cf cf : kDataCfs) {
    storage::ReadOptions ro;
    ro.lower_bound = start_key;
    ro.upper_bound = end_key;
    ro.snapshot = snapshot;
    std::string path = SnapshotFilePath(dir, cf, 0);
    MICEDB_ASSIGN_OR_RETURN(storage::ExportStats stats, engine->ExportSst(cf, ro, path));
    if (stats.count > 0) files.push_back(SnapshotFile{cf, path});
  }
  return files;
}

std::string EncodePendingInstall(const std::string& dir, const raft::Snapshot& snap) {
  std::string v = dir;
  v.push_back('\0');
  v += snap.SerializeAsString();
  return v;
}

Status DecodePendingInstall(std::string_view value, std::string* dir, raft::Snapshot* snap) {
  size_t nul = value.find('\0');
  if (nul == std::string_view::npos) return Status::Corruption("pending install record");
  *dir = std::string(value.substr(0, nul));
  std::string_view rest = value.substr(nul + 1);
  if (!snap->ParseFromArray(rest.data(), static_cast<int>(rest.size()))) {
    return Status::Corruption("pending install record: snapshot does not parse");
  }
  return Status::OK();
}

Result<InstalledState> RunSnapshotInstall(storage::Engine* engine, uint64_t region,
                                          std::string_view pending,
                                          const raft::HardState& hard_state) {
  std::string dir;
  raft::Snapshot snap;
  MICEDB_RETURN_IF_ERROR(DecodePendingInstall(pending, &dir, &snap));
  SnapshotDescriptor sd;
  if (!sd.ParseFromString(snap.data())) {
    return Status::Corruption(fmt::format("region {}: snapshot descriptor does not parse", region));
  }
  InstalledState out;
  out.desc = sd.region();
  *out.desc.mutable_conf_state() = snap.metadata().conf_state();
  const std::string begin = out.desc.start_key();
  const std::string end = EngineRangeEnd(out.desc.end_key());

  storage::WriteBatch clear;
  for (Cf cf : kDataCfs) clear.DeleteRange(cf, begin, end);
  MICEDB_RETURN_IF_ERROR(engine->Write(clear, storage::WriteOptions{.sync = true}));
  for (Cf cf : kDataCfs) {
    std::vector<std::string> paths;
    for (uint32_t n = 0;; ++n) {
      std::string path = SnapshotFilePath(dir, cf, n);
      if (!fs::exists(path)) break;
      paths.push_back(path);
    }
    MICEDB_RETURN_IF_ERROR(engine->IngestSst(cf, paths));
  }

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
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

}  // namespace micedb::store
