// Engine: the storage interface a store is written against (DESIGN §4). One engine holds four
// column families (storage/cf.h) in one ordered byte key space each; keys compare bytewise.
//
// Implementations:
//   RocksEngine (storage/rocks_engine.h)  the real thing, on RocksDB.
//   MemEngine   (storage/mem_engine.h)    in memory, for tests and the simulation.
//   FaultEngine (storage/fault_engine.h)  a MemEngine that models durability: it can lose
//                                         every write not yet synced, and fail writes.
//
// Thread-safety: every Engine method may be called from any thread concurrently.
// Ownership: snapshots and iterators are owned by the caller and must be destroyed before the
// engine that made them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "storage/cf.h"
#include "storage/iterator.h"
#include "storage/write_batch.h"

namespace micedb::storage {

// A consistent, read-only view of every column family at one moment. Writes made after
// GetSnapshot() are invisible through it. Released when destroyed.
class Snapshot {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  virtual ~Snapshot() = default;

 protected:
  Snapshot() = default;
};

struct ReadOptions {
  // Keys k with lower_bound <= k < upper_bound are visible to an iterator; an absent bound
  // does not limit. Get ignores the bounds.
  std::optional<std::string> lower_bound;
  std::optional<std::string> upper_bound;
  // Read as of this snapshot (not owned; must come from the same engine and outlive the
  // read or iterator). Null reads the latest state.
  const Snapshot* snapshot = nullptr;
};

struct WriteOptions {
  // When true the write is durable (the log is fsynced) before Write returns, and so is
  // every write that returned before it. When false a power loss may drop it.
  bool sync = false;
};

// What ExportSst wrote.
struct ExportStats {
  uint64_t count = 0;  // number of keys
  uint64_t bytes = 0;  // size of the file
};

class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  virtual ~Engine() = default;

  // ---- Reads ----

  // The value of `key` in `cf`. NotFound when absent; InvalidArgument for a bad column family
  // or a snapshot from another engine; IoError or Corruption from the disk.
  virtual Result<std::string> Get(Cf cf, std::string_view key, const ReadOptions& options) = 0;
  Result<std::string> Get(Cf cf, std::string_view key) { return Get(cf, key, ReadOptions{}); }

  // A new iterator over `cf`, unpositioned (call a Seek first). Errors (a bad column family
  // or snapshot) show in the iterator's status(). Never null.
  virtual std::unique_ptr<Iterator> NewIterator(Cf cf, const ReadOptions& options) = 0;

  // A snapshot of the current state of every column family. Never null.
  virtual std::unique_ptr<Snapshot> GetSnapshot() = 0;

  // ---- Writes ----

  // Applies every op of `batch` or none of them, atomically across column families: no
  // reader, iterator or snapshot sees part of a batch. InvalidArgument (and nothing applied)
  // when batch.Validate() fails; IoError when the write or its sync failed, in which case
  // nothing was applied; ResourceExhausted when it failed for want of disk space (nothing
  // applied; see Resume). An empty batch is OK and, with sync, still syncs earlier writes.
  virtual Status Write(const WriteBatch& batch, const WriteOptions& options) = 0;

  // Single-op conveniences; the same as writing a batch of one.
  Status Put(Cf cf, std::string_view key, std::string_view value, WriteOptions options = {});
  Status Delete(Cf cf, std::string_view key, WriteOptions options = {});
  // Removes begin <= k < end. InvalidArgument when begin sorts after end.
  Status DeleteRange(Cf cf, std::string_view begin, std::string_view end,
                     WriteOptions options = {});

  // Makes every write that has returned so far durable. IoError on failure.
  virtual Status SyncWAL() = 0;
  // Writes in-memory tables to files and waits; every earlier write becomes durable.
  virtual Status Flush() = 0;

  // After a failed write: makes the engine take writes again if it can. A RocksDB that met a
  // background error (a full disk during a write, a flush or a compaction) refuses every
  // write until then. OK when writes may go on (also when nothing had failed); Busy while
  // the engine's own recovery is under way; the error that still stands otherwise
  // (ResourceExhausted while the disk is full). The default has nothing to resume.
  virtual Status Resume() { return Status::OK(); }

  // ---- Size ----

  // Approximate bytes used by the keys begin <= k < end of `cf`, counting both in-memory
  // and on-disk data. Grows as data is added; exact for MemEngine (key plus value bytes).
  virtual Result<uint64_t> ApproximateSize(Cf cf, std::string_view begin, std::string_view end) = 0;
  // Approximate number of keys begin <= k < end of `cf`: RocksEngine takes the live entries
  // of the table files that overlap the range in proportion to their bytes inside it (old
  // versions count too until compaction drops them) plus RocksDB's estimate of the memtables'
  // entries in it; exact for MemEngine.
  virtual Result<uint64_t> ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) = 0;

  // ---- Files ----

  // Writes a consistent copy of the whole engine into `dir`, which must not exist (its parent
  // must). AlreadyExists if it does; IoError on failure. The copy is opened by the engine
  // type's own open function (RocksEngine::Open, MemEngine::OpenCheckpoint).
  virtual Status Checkpoint(const std::string& dir) = 0;

  // Writes the keys of `cf` within the bounds of `range` (as of range.snapshot, or now) to a
  // new SST file at `path`, replacing any file there. Returns the key count and file size.
  // When no key is in range no file is written (an old file at `path` is removed) and the
  // count is 0: skip such files when ingesting. IoError on failure; no file is left behind.
  virtual Result<ExportStats> ExportSst(Cf cf, const ReadOptions& range,
                                        const std::string& path) = 0;
  // Keys begin <= k < end, latest state.
  Result<ExportStats> ExportSst(Cf cf, std::string_view begin, std::string_view end,
                                const std::string& path);

  // Adds every key of the SST files at `paths` (written by ExportSst of any engine type) to
  // `cf`, atomically; an ingested key replaces an existing one, later files win over earlier.
  // The files are not changed or removed. Keys already in `cf` but not in the files stay:
  // clear the range first to replace it. An empty list is OK. IoError or Corruption when a
  // file cannot be read; nothing is ingested then. Ingested data is durable on return.
  virtual Status IngestSst(Cf cf, const std::vector<std::string>& paths) = 0;
};

}  // namespace micedb::storage
