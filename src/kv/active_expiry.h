// ActiveExpiry: deletes keys whose time to live has passed in the regions this node leads, as
// Redis's active expiry does, so that expired keys do not sit on disk until someone reads
// them. Each pass collects up to `batch` due keys per region (walking a little further on
// each pass) and sends one DeleteExpired command per region through the backend, so the
// deletes go through raft and every replica drops exactly the same keys at the same index.
//
// The work of a pass is bounded as a whole, however many regions this node leads: it examines
// at most `examine_per_pass` keys, visiting the regions in turn from where the last pass
// stopped; and a region whose last full walk found no key with a time to live at all is skipped
// until keys are written to it again (LedRegion::writes moves).
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
    int64_t interval_ms = 1000;      // between passes
    size_t batch = 256;              // due keys per region per pass
    size_t examine_per_pass = 5120;  // keys examined per pass, in all regions together
  };
  // A region this node leads now: its id and user-key range, and a count of the keys written
  // to it that rises with every write (0 when unknown: never skipped).
  struct LedRegion {
    uint64_t id;
    KeyRange range;
    uint64_t writes = 0;
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
  // Keys the last pass examined.
  size_t last_examined() const { return last_examined_; }

 private:
  Options options_;
  KvBackend* backend_;
  storage::Engine* engine_;
  LedRegions led_;
  const Clock* clock_;
  struct RegionState {
    std::string resume;         // where the next pass goes on ("" : from the start)
    bool saw_expiry = false;    // this walk over the region met a key with a time to live
    bool clean = false;         // the last full walk met none
    uint64_t clean_writes = 0;  // LedRegion::writes when it was found clean
  };
  std::map<uint64_t, RegionState> regions_;  // by region id
  uint64_t next_region_ = 0;  // the next pass starts at the first region from this id
  size_t last_examined_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace micedb::kv
