// MemEngine: an Engine held entirely in memory, with the same observable behaviour as
// RocksEngine (bytewise key order, bounds, snapshots, atomic batches, SST export and ingest),
// for unit tests and the deterministic simulation.
//
// Each column family is an ordered map shared copy-on-write: snapshots and iterators hold a
// reference to the maps as they were, and a write that finds its map shared copies it first.
// Holding a snapshot across many writes therefore costs one copy of the touched family per
// snapshot, not one per write.
//
// Thread-safe: all methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "storage/engine.h"
#include "storage/mem_iterator.h"

namespace micedb::storage {

class MemEngine final : public Engine {
 public:
  using Map = MemMap;

  // An empty engine.
  MemEngine();
  ~MemEngine() override;

  // Loads a copy written by Checkpoint(dir). NotFound when `dir` holds no MemEngine checkpoint;
  // Corruption or IoError when its files are damaged or unreadable.
  static Result<std::unique_ptr<MemEngine>> OpenCheckpoint(const std::string& dir);

  // A new engine with the same contents as this one (sharing the maps copy-on-write).
  // Snapshots of this engine cannot be used with the clone.
  std::unique_ptr<MemEngine> Clone() const;

  using Engine::ExportSst;
  using Engine::Get;

  Result<std::string> Get(Cf cf, std::string_view key, const ReadOptions& options) override;
  std::unique_ptr<Iterator> NewIterator(Cf cf, const ReadOptions& options) override;
  std::unique_ptr<Snapshot> GetSnapshot() override;
  Status Write(const WriteBatch& batch, const WriteOptions& options) override;
  // Nothing is on disk, so these only report OK.
  Status SyncWAL() override { return Status::OK(); }
  Status Flush() override { return Status::OK(); }
  Result<uint64_t> ApproximateSize(Cf cf, std::string_view begin, std::string_view end) override;
  Result<uint64_t> ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) override;
  // Writes `dir`/MEMENGINE (the list of families present) and one SST file per non-empty
  // family, `dir`/<family>.sst.
  Status Checkpoint(const std::string& dir) override;
  Result<ExportStats> ExportSst(Cf cf, const ReadOptions& range, const std::string& path) override;
  Status IngestSst(Cf cf, const std::vector<std::string>& paths) override;

 private:
  // The map of `cf` for reading: the snapshot's if `snapshot` is set, else the current one.
  // InvalidArgument for a bad column family or a snapshot from another engine.
  Result<std::shared_ptr<const Map>> ReadMap(Cf cf, const Snapshot* snapshot) const;
  // The map of `cf` ready for writing: copied first if anyone else holds it.
  Map& MutableMap(Cf cf) REQUIRES(mu_);
  // Over begin <= k < end of `cf`: the key and value bytes, or (bytes false) the keys.
  Result<uint64_t> SumOverRange(Cf cf, std::string_view begin, std::string_view end, bool bytes)
      EXCLUDES(mu_);

  const uint64_t id_;  // tells this engine's snapshots from another's

  mutable std::mutex mu_;
  std::array<std::shared_ptr<Map>, kNumCfs> maps_ GUARDED_BY(mu_);
};

}  // namespace micedb::storage
