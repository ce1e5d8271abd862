// RocksEngine: the Engine on RocksDB, one database per store with the column families
// "default", "raft", "lock" and "write" (storage/cf.h, docs/storage.md).
//
// Thread-safe: all methods may be called concurrently. Snapshots and iterators must be
// destroyed before the engine.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "storage/engine.h"
#include "storage/rocks_options.h"

namespace rocksdb {
class Cache;
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace micedb::storage {

class RocksEngine final : public Engine {
 public:
  // Opens (creating if options.create_if_missing) the database in `dir`, creating any of the
  // four column families it lacks. Errors: Busy when another engine or process holds the
  // directory's lock (the message names the LOCK file); Corruption when the data is damaged;
  // InvalidArgument for bad options or a database with unknown column families; IoError.
  static Result<std::unique_ptr<RocksEngine>> Open(const std::string& dir,
                                                   const RocksOptions& options = RocksOptions{});

  // Closes the database. Writes not synced may be lost, as on a crash.
  ~RocksEngine() override;

  const std::string& dir() const { return dir_; }

  using Engine::ExportSst;
  using Engine::Get;

  Result<std::string> Get(Cf cf, std::string_view key, const ReadOptions& options) override;
  std::unique_ptr<Iterator> NewIterator(Cf cf, const ReadOptions& options) override;
  std::unique_ptr<Snapshot> GetSnapshot() override;
  Status Write(const WriteBatch& batch, const WriteOptions& options) override;
  Status SyncWAL() override;
  Status Flush() override;
  // DB::Resume: Busy while RocksDB's own recovery from a full disk (it waits for free space)
  // is under way.
  Status Resume() override;
  Result<uint64_t> ApproximateSize(Cf cf, std::string_view begin, std::string_view end) override;
  Result<uint64_t> ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) override;
  // A RocksDB checkpoint: hard links to the table files plus copies of the rest, so it is
  // cheap on one file system. Open it with RocksEngine::Open.
  Status Checkpoint(const std::string& dir) override;
  Result<ExportStats> ExportSst(Cf cf, const ReadOptions& range, const std::string& path) override;
  Status IngestSst(Cf cf, const std::vector<std::string>& paths) override;

 private:
  RocksEngine(std::string dir, std::shared_ptr<rocksdb::Cache> cache,
              std::unique_ptr<rocksdb::DB> db,
              std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> handles);

  // Translates a ReadOptions snapshot; InvalidArgument when it is not one of ours.
  Status CheckSnapshot(const Snapshot* snapshot) const;

  const std::string dir_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::unique_ptr<rocksdb::DB> db_;
  // Owned; released before db_ closes.
  std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> handles_;
};

}  // namespace micedb::storage
