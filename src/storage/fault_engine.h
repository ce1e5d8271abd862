// FaultEngine: a MemEngine that models what a disk keeps across a power loss, and can be told
// to fail writes. Tests and the simulation use it to check that code acknowledges only what
// it has synced (DESIGN §8, rule 1).
//
// Durability model (that of RocksDB's write-ahead log): writes are applied and visible at
// once. A Write with sync = true, SyncWAL(), Flush() or IngestSst() makes that write and every
// earlier one durable. Writes with sync = false stay "unsynced" until then. SimulatePowerLoss()
// drops the unsynced writes, leaving exactly the state as of the last durable point (or a
// prefix of the unsynced writes, if asked: a log is lost from its tail).
//
// Thread-safe: all methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "storage/engine.h"
#include "storage/mem_engine.h"
#include "storage/write_batch.h"

namespace micedb::storage {

class FaultEngine final : public Engine {
 public:
  // An empty engine with nothing unsynced and no faults armed.
  FaultEngine();
  ~FaultEngine() override;

  // Drops every write not yet durable, keeping only the first `keep_unsynced` of them (in
  // write order; 0 drops all). Snapshots taken before the loss become unusable (reads through
  // them fail with InvalidArgument); iterators keep their old view. Armed write errors stay.
  void SimulatePowerLoss(size_t keep_unsynced = 0);

  // The next `count` calls to Write (including Put, Delete and DeleteRange) fail with IoError
  // and apply nothing. Replaces any count armed before.
  void FailNextWrites(int count);

  // Models a full disk, or a background flush that failed for want of space: while `error` is
  // set (not OK), every Write, SyncWAL and Flush fails with it and changes nothing. As
  // RocksDB does after such a failure, the engine then refuses every write with that error
  // until Resume() is called once the fault is cleared (SetWriteFault(Status::OK())).
  // `matches`, when given, limits the fault to the batches it returns true for (SyncWAL and
  // Flush then fail only once the engine is stopped).
  void SetWriteFault(Status error, std::function<bool(const WriteBatch&)> matches = nullptr);

  // Number of writes applied but not yet durable.
  size_t UnsyncedWriteCount() const;

  using Engine::ExportSst;
  using Engine::Get;

  Result<std::string> Get(Cf cf, std::string_view key, const ReadOptions& options) override;
  std::unique_ptr<Iterator> NewIterator(Cf cf, const ReadOptions& options) override;
  std::unique_ptr<Snapshot> GetSnapshot() override;
  Status Write(const WriteBatch& batch, const WriteOptions& options) override;
  Status SyncWAL() override;
  Status Flush() override;
  // The armed fault while SetWriteFault's error is set; otherwise OK, and writes go on.
  Status Resume() override;
  Result<uint64_t> ApproximateSize(Cf cf, std::string_view begin, std::string_view end) override;
  Result<uint64_t> ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) override;
  // The same format as MemEngine::Checkpoint (open it with MemEngine::OpenCheckpoint); it holds
  // the current state, unsynced writes included. It does not make anything durable.
  Status Checkpoint(const std::string& dir) override;
  Result<ExportStats> ExportSst(Cf cf, const ReadOptions& range, const std::string& path) override;
  Status IngestSst(Cf cf, const std::vector<std::string>& paths) override;

 private:
  // The armed fault or the stop that follows it (OK: writes may go on).
  Status CheckWritable(const WriteBatch* batch) REQUIRES(mu_);
  // Applies the first `count` unsynced writes to durable_ and forgets all of them.
  void MakeDurable(size_t count) REQUIRES(mu_);

  mutable std::mutex mu_;
  std::unique_ptr<MemEngine> live_ GUARDED_BY(mu_);     // what readers see
  std::unique_ptr<MemEngine> durable_ GUARDED_BY(mu_);  // what survives a power loss
  std::vector<WriteBatch> unsynced_ GUARDED_BY(mu_);    // applied to live_ only, oldest first
  int failing_writes_ GUARDED_BY(mu_) = 0;
  Status fault_ GUARDED_BY(mu_);  // SetWriteFault's error (OK: none)
  std::function<bool(const WriteBatch&)> fault_matches_ GUARDED_BY(mu_);
  Status stopped_ GUARDED_BY(mu_);  // the error a write failed with: refused until Resume()
};

}  // namespace micedb::storage
