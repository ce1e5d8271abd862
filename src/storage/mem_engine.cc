#include "storage/mem_engine.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <utility>

#include <rocksdb/options.h>

#include "storage/sst_file.h"

namespace micedb::storage {
namespace {

// First line of a checkpoint's MEMENGINE file; the lines after it name the families present.
constexpr std::string_view kCheckpointHeader = "micedb-memengine-checkpoint 1";
constexpr std::string_view kCheckpointListFile = "MEMENGINE";

std::atomic<uint64_t> next_engine_id{1};

class MemSnapshot final : public Snapshot {
 public:
  MemSnapshot(uint64_t engine_id, std::array<std::shared_ptr<const MemMap>, kNumCfs> maps)
      : engine_id_(engine_id), maps_(std::move(maps)) {}

  uint64_t engine_id() const { return engine_id_; }
  const std::shared_ptr<const MemMap>& map(Cf cf) const { return maps_[CfIndex(cf)]; }

 private:
  const uint64_t engine_id_;
  const std::array<std::shared_ptr<const MemMap>, kNumCfs> maps_;
};

Status BadCf(Cf cf) {
  return Status::InvalidArgument("column family id " + std::to_string(static_cast<int>(cf)) +
                                 " out of range");
}

// Options for the SST files a MemEngine writes: bytewise keys, no compression (the files are
// small and short-lived in tests and the simulation).
rocksdb::Options MemSstOptions() {
  rocksdb::Options options;
  options.compression = rocksdb::kNoCompression;
  return options;
}

std::string SstPathFor(const std::string& dir, Cf cf) {
  return (std::filesystem::path(dir) / (std::string(CfName(cf)) + ".sst")).string();
}

}  // namespace

MemEngine::MemEngine() : id_(next_engine_id.fetch_add(1)) {
  for (auto& map : maps_) {
    map = std::make_shared<Map>();
  }
}

MemEngine::~MemEngine() = default;

std::unique_ptr<MemEngine> MemEngine::Clone() const {
  auto clone = std::make_unique<MemEngine>();
  std::lock_guard<std::mutex> lock(mu_);
  clone->maps_ = maps_;
  return clone;
}

Result<std::shared_ptr<const MemEngine::Map>> MemEngine::ReadMap(Cf cf,
                                                                 const Snapshot* snapshot) const {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  if (snapshot != nullptr) {
    const auto* snap = dynamic_cast<const MemSnapshot*>(snapshot);
    if (snap == nullptr || snap->engine_id() != id_) {
      return Status::InvalidArgument("snapshot does not belong to this MemEngine");
    }
    return snap->map(cf);
  }
  std::lock_guard<std::mutex> lock(mu_);
  return std::shared_ptr<const Map>(maps_[CfIndex(cf)]);
}

MemEngine::Map& MemEngine::MutableMap(Cf cf) {
  std::shared_ptr<Map>& map = maps_[CfIndex(cf)];
  // Someone (a snapshot, an iterator, a clone) still reads this version: leave it to them.
  if (map.use_count() > 1) {
    map = std::make_shared<Map>(*map);
  }
  return *map;
}

Result<std::string> MemEngine::Get(Cf cf, std::string_view key, const ReadOptions& options) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  auto not_found = [cf] {
    return Status::NotFound("key not found in column family " + std::string(CfName(cf)));
  };
  if (options.snapshot != nullptr) {
    MICEDB_ASSIGN_OR_RETURN(std::shared_ptr<const Map> map, ReadMap(cf, options.snapshot));
    auto it = map->find(key);
    if (it == map->end()) {
      return not_found();
    }
    return it->second;
  }
  // Latest state: look up under the lock rather than take a reference, so that a concurrent
  // writer does not copy the map on our account.
  std::lock_guard<std::mutex> lock(mu_);
  const Map& map = *maps_[CfIndex(cf)];
  auto it = map.find(key);
  if (it == map.end()) {
    return not_found();
  }
  return it->second;
}

std::unique_ptr<Iterator> MemEngine::NewIterator(Cf cf, const ReadOptions& options) {
  Result<std::shared_ptr<const Map>> map = ReadMap(cf, options.snapshot);
  if (!map.ok()) {
    return NewErrorIterator(map.status());
  }
  return NewMemIterator(std::move(map).value(), options.lower_bound, options.upper_bound);
}

std::unique_ptr<Snapshot> MemEngine::GetSnapshot() {
  std::array<std::shared_ptr<const Map>, kNumCfs> maps;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < kNumCfs; ++i) {
    maps[i] = maps_[i];
  }
  return std::make_unique<MemSnapshot>(id_, std::move(maps));
}

Status MemEngine::Write(const WriteBatch& batch, const WriteOptions& options) {
  MICEDB_RETURN_IF_ERROR(batch.Validate());
  // Validation above is the only way a batch can fail, so applying under one lock hold makes
  // it all-or-nothing and invisible until complete.
  std::lock_guard<std::mutex> lock(mu_);
  for (const WriteBatch::Op& op : batch.ops()) {
    Map& map = MutableMap(op.cf);
    switch (op.type) {
      case WriteBatch::OpType::kPut:
        map.insert_or_assign(op.key, op.value);
        break;
      case WriteBatch::OpType::kDelete:
        if (auto it = map.find(op.key); it != map.end()) {
          map.erase(it);
        }
        break;
      case WriteBatch::OpType::kDeleteRange:
        map.erase(map.lower_bound(op.key), map.lower_bound(op.value));
        break;
    }
  }
  return Status::OK();
}

Result<uint64_t> MemEngine::SumOverRange(Cf cf, std::string_view begin, std::string_view end,
                                         bool bytes) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  if (begin >= end) {
    return uint64_t{0};
  }
  std::lock_guard<std::mutex> lock(mu_);
  const Map& map = *maps_[CfIndex(cf)];
  uint64_t sum = 0;
  for (auto it = map.lower_bound(begin); it != map.end() && it->first < end; ++it) {
    sum += bytes ? it->first.size() + it->second.size() : 1;
  }
  return sum;
}

Result<uint64_t> MemEngine::ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) {
  return SumOverRange(cf, begin, end, /*bytes=*/false);
}

Result<uint64_t> MemEngine::ApproximateSize(Cf cf, std::string_view begin, std::string_view end) {
  return SumOverRange(cf, begin, end, /*bytes=*/true);
}

Status MemEngine::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return Status::AlreadyExists("checkpoint directory " + dir + " already exists");
  }
  if (!std::filesystem::create_directory(dir, ec) || ec) {
    return Status::IoError("create checkpoint directory " + dir + ": " + ec.message());
  }
  std::unique_ptr<Snapshot> snapshot = GetSnapshot();
  ReadOptions at_snapshot;
  at_snapshot.snapshot = snapshot.get();
  std::string list(kCheckpointHeader);
  list += '\n';
  for (Cf cf : kAllCfs) {
    MICEDB_ASSIGN_OR_RETURN(ExportStats stats, ExportSst(cf, at_snapshot, SstPathFor(dir, cf)));
    if (stats.count > 0) {
      list += CfName(cf);
      list += '\n';
    }
  }
  const std::string list_path = (std::filesystem::path(dir) / kCheckpointListFile).string();
  std::ofstream out(list_path, std::ios::binary | std::ios::trunc);
  out << list;
  out.close();
  if (!out) {
    return Status::IoError("write checkpoint list " + list_path);
  }
  return Status::OK();
}

Result<std::unique_ptr<MemEngine>> MemEngine::OpenCheckpoint(const std::string& dir) {
  const std::string list_path = (std::filesystem::path(dir) / kCheckpointListFile).string();
  std::ifstream in(list_path, std::ios::binary);
  if (!in) {
    return Status::NotFound("no MemEngine checkpoint in " + dir + " (missing " +
                            std::string(kCheckpointListFile) + ")");
  }
  std::string line;
  if (!std::getline(in, line) || line != kCheckpointHeader) {
    return Status::Corruption("bad header in " + list_path);
  }
  auto engine = std::make_unique<MemEngine>();
  while (std::getline(in, line)) {
    Cf cf;
    if (!CfFromName(line, &cf)) {
      std::string msg = "unknown column family '" + line;
      msg += "' in ";
      msg += list_path;
      return Status::Corruption(msg);
    }
    MICEDB_RETURN_IF_ERROR(engine->IngestSst(cf, {SstPathFor(dir, cf)}));
  }
  if (in.bad()) {
    return Status::IoError("read " + list_path);
  }
  return engine;
}

Result<ExportStats> MemEngine::ExportSst(Cf cf, const ReadOptions& range, const std::string& path) {
  std::unique_ptr<Iterator> it = NewIterator(cf, range);
  MICEDB_RETURN_IF_ERROR(it->status());
  return WriteSstFile(*it, MemSstOptions(), path);
}

Status MemEngine::IngestSst(Cf cf, const std::vector<std::string>& paths) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  // Read every file before touching the engine, so a bad file leaves it unchanged.
  Map staged;
  for (const std::string& path : paths) {
    MICEDB_RETURN_IF_ERROR(
        ReadSstFile(path, [&staged](std::string_view key, std::string_view value) {
          staged.insert_or_assign(std::string(key), std::string(value));
        }));
  }
  if (staged.empty()) {
    return Status::OK();
  }
  std::lock_guard<std::mutex> lock(mu_);
  Map& map = MutableMap(cf);
  for (auto& [key, value] : staged) {
    map.insert_or_assign(key, std::move(value));
  }
  return Status::OK();
}

}  // namespace micedb::storage
