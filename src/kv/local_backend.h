// LocalBackend: a KvBackend on one storage engine with no replication, for tests and tools
// (kv_local_server). It behaves like a one-node store:
//   - Writes are queued to one apply thread, which takes every queued write (up to a bound)
//     as one apply round: each gets the next fake log index (its mod revision), all are
//     applied through one ApplyBatch and written as one synced WriteBatch together with the
//     last applied index (so revisions keep growing across restarts). Then their callbacks
//     run, on the apply thread. Concurrent writers thus share one fsync (group commit), and
//     Execute never blocks its caller on the disk.
//   - Reads run at once on the caller's thread, at the clock's wall time. Reads of several
//     keys are kept from seeing half of an apply round.
//
// Thread-safe. The destructor finishes the writes already queued, then stops the thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/strong_id.h"
#include "common/thread_annotations.h"
#include "kv/apply_batch.h"
#include "kv/backend.h"
#include "kv/state_machine.h"
#include "storage/engine.h"

namespace micedb::kv {

class LocalBackend final : public KvBackend {
 public:
  // Where the last applied fake log index is kept (column family kRaft, fixed64).
  static constexpr char kAppliedIndexKey[] = "kv-local/applied-index";
  // Most writes applied in one round.
  static constexpr size_t kMaxRoundWrites = 256;

  // `engine` and `clock` are not owned and must outlive the backend. Reads the last applied
  // index from the engine: Corruption or IoError when it cannot.
  static Result<std::unique_ptr<LocalBackend>> Open(storage::Engine* engine, const Clock* clock,
                                                    StateMachineOptions options = {});
  ~LocalBackend() override;

  // Reads call `done` before returning; writes call it later from the apply thread. A write
  // with now_ms 0 is stamped with the clock's wall time. A failed engine write fails every
  // write of its round with the engine's Status.
  void Execute(Command cmd, ReadMode mode, Callback done) override;

  // One step of active expiry: collects up to `limit` keys whose time has passed, walking the
  // keyspace a little further on each call, deletes them through the apply thread and waits.
  // Returns how many were deleted. Call from one thread at a time, never from a callback.
  Result<int64_t> ExpireCycle(size_t limit);

  // The fake log index of the last applied write.
  LogIndex applied_index() const;

 private:
  struct PendingWrite {
    Command cmd;
    Callback done;
  };

  LocalBackend(storage::Engine* engine, const Clock* clock, StateMachineOptions options,
               LogIndex applied);

  void ApplyLoop();
  // Applies `round` as one round and answers every write in it. Apply thread only.
  void ApplyRound(std::vector<PendingWrite>& round);

  storage::Engine* const engine_;
  const Clock* const clock_;
  const KvStateMachine machine_;

  // Held exclusively while a round's batch is written, shared by reads of several keys.
  std::shared_mutex engine_mu_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<PendingWrite> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  LogIndex applied_ GUARDED_BY(mu_);

  // Apply thread only.
  ApplyBatch batch_;
  std::string expiry_resume_;  // ExpireCycle's caller only
  std::thread apply_thread_;
};

}  // namespace micedb::kv
