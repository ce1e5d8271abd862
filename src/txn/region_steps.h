// The Percolator steps as bodies of region requests (proto/micedb/txn.proto): RegionSteps
// checks a pb::TxnRequest, runs the actions of txn/actions.h on one region's replica and turns
// the outcome into a pb::TxnResponse. The store (src/store) has already checked the region, the
// epoch and that every key the request names lies in the region (EngineKeys); scans and
// range resolves are clipped to the region here, and say where the next region starts.
//
// Thread-safety: const; any number of threads at once (the concurrency manager and the
// counters are thread-safe).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "kv/region_state_machine.h"
#include "micedb/txn.pb.h"
#include "txn/actions.h"
#include "txn/concurrency.h"

namespace micedb::txn {

struct RegionStepsOptions {
  // Keys one scan or resolve returns or looks at when the request names no limit, and the
  // most a request may ask for.
  uint32_t default_scan_limit = 256;
  uint32_t max_scan_limit = 10000;
  // Most keys (mutations) one request may name.
  size_t max_request_keys = 10000;
  // The wall clock timestamps are judged by (a read or a safe point far in the future is
  // refused); null: not judged.
  const Clock* clock = nullptr;
};

// A region's user-key range, from its engine-key range: [start, end), no end when `end` is
// nullopt; `empty` when the region holds no transactional key. A boundary inside the
// transactional space must be some E(K) (split keys are chosen so, docs/transactions.md §1);
// `malformed` otherwise.
struct UserRange {
  std::string start;
  std::optional<std::string> end;
  bool empty = false;
  bool malformed = false;
};
UserRange UserRangeOfRegion(const store::RegionDescriptor& region);

pb::KeyError ToProto(const TxnError& e);
// with_secondaries: the primary's list of the other keys too (async commit).
pb::LockInfo ToProto(const Lock& lock, std::string_view key, bool with_secondaries = false);

// What the one-phase commits of a store came to (for /metrics).
struct OnePcCounters {
  std::atomic<uint64_t> admitted{0};    // proposed as one-phase commits
  std::atomic<uint64_t> committed{0};   // applied as one (on every replica: counted here)
  std::atomic<uint64_t> not_synced{0};  // fell back: this leadership's max_ts not yet known
  std::atomic<uint64_t> read_above{0};  // fell back: a read at or above commit_ts was served
  std::atomic<uint64_t> key_busy{0};    // fell back: another one is committing a key
  std::atomic<uint64_t> reads_held{0};  // reads told to retry behind a memory lock
  // Async commit (§3b): prewrites proposed with a min_commit_ts, and those made two-phase.
  std::atomic<uint64_t> async_admitted{0};
  std::atomic<uint64_t> async_fallbacks{0};
};

class RegionSteps final : public kv::TxnBodies {
 public:
  // `cm`: the store's (not owned; outlives this); null: every one-phase commit becomes a
  // plain prewrite.
  explicit RegionSteps(RegionStepsOptions options = {}, ConcurrencyManager* cm = nullptr)
      : options_(options), cm_(cm) {}

  pb::TxnResponse Apply(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                        kv::ApplyBatch* batch) const override;
  pb::TxnResponse Read(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                       kv::ReadView* view) const override;
  void EngineKeys(const pb::TxnRequest& req, std::vector<std::string>* keys) const override;
  // Whether a read may take its snapshot now: 0, or retry after this many ms (MayRead).
  uint64_t ReadWait(const pb::TxnRequest& req) const override;
  // Admits a one-phase commit (memory locks, txn/concurrency.h) or turns it into a plain
  // prewrite.
  // Refuses a prewrite below the GC safe point.
  std::function<void()> BeforePropose(const store::RegionDescriptor& region, uint64_t term,
                                      pb::TxnRequest* req,
                                      store::TxnRefusal* refused) const override;

  // The GC safe point (docs/transactions.md §8) as this node knows it: reads below it are
  // refused ("snapshot too old"), and so are prewrites that started below it. Only rises;
  // applied GC entries raise it too.
  void RaiseSafePoint(uint64_t sp) const;
  // Until RaiseSafePoint is first called (with 0 when there is none), reads and prewrites
  // are told to retry: after a restart the node does not know how far GC went.
  void RequireSafePoint() const { safe_point_known_.store(false); }
  uint64_t safe_point() const { return safe_point_.load(); }

  const OnePcCounters& one_pc_counters() const { return counters_; }

 private:
  // Computes an async prewrite's min_commit_ts under memory locks, or makes it a two-phase
  // prewrite (docs/transactions.md §3b). Returns what releases the locks.
  std::function<void()> AdmitAsync(const store::RegionDescriptor& region, uint64_t term,
                                   pb::PrewriteRequest* p) const;
  // A reason to refuse `req` before it runs, or nullopt.
  std::optional<std::string> Invalid(const pb::TxnRequest& req) const;
  // Whether a read may be served now (not behind a one-phase commit's memory lock); raises
  // the store's max_ts.
  bool MayRead(const pb::TxnRequest& req) const;
  // Why a read is refused for its timestamp below the safe point, or nullopt.
  std::optional<std::string> TooOld(const pb::TxnRequest& req) const;

  RegionStepsOptions options_;
  ConcurrencyManager* const cm_;
  mutable OnePcCounters counters_;
  mutable std::atomic<uint64_t> safe_point_{0};
  mutable std::atomic<bool> safe_point_known_{true};
};

}  // namespace micedb::txn
