// ActiveExpiry: deletes keys whose time to live has passed in the regions this node leads, as
// Redis's active expiry does, so that expired keys do not sit on disk until someone reads
// them. Each pass collects up to `batch` due keys per region (walking a little further on
// each pass) and sends one DeleteExpired command per region through the backend, so the
// deletes go through raft and every replica drops exactly the same keys at the same index.
//
// Thread-safety: Start and Stop from one thread; RunOnce is thread-compatible (the expiry
// thread calls it while started).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "kv/backend.h"
#include "kv/state_machine.h"
#include "storage/engine.h"

namespace micedb::kv {

class ActiveExpiry {
 public:
  struct Options {
    int64_t interval_ms = 1000;  // between passes
    size_t batch = 256;          // keys per region per pass
  };
  // A region this node leads now: its id and user-key range.
  struct LedRegion {
    uint64_t id;
    KeyRange range;
  };
  using LedRegions = std::function<std::vector<LedRegion>()>;

  // Not owned; all must outlive the expiry. `clock` gives the wall time keys expire by.
  ActiveExpiry(Options options, KvBackend* backend, storage::Engine* engine, LedRegions led,
               const Clock* clock);
  ~ActiveExpiry();

  // Starts the "expiry" thread, which runs a pass every interval.
  void Start();
  // Stops it. Idempotent.
  void Stop() EXCLUDES(mu_);

  // One pass: returns how many keys were sent for deletion (the deletes complete later).
  size_t RunOnce();

 private:
  Options options_;
  KvBackend* backend_;
  storage::Engine* engine_;
  LedRegions led_;
  const Clock* clock_;
  std::map<uint64_t, std::string> resume_;  // per region: where the next pass goes on

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace micedb::kv
