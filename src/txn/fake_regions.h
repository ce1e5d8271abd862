// Test support: a TxnTransport over one in-memory engine cut into regions, running the real
// store envelope (CheckRequest, Applier, ServeRead), the real kv + txn state machine and a
// routing cache that can go stale, with answers on an executor thread. What it leaves out is
// replication: every region has one replica, and applies are serialized by one mutex, as a
// raft log would order them.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "kv/region_state_machine.h"
#include "router/thread_executor.h"
#include "storage/mem_engine.h"
#include "storage/write_batch.h"
#include "store/apply.h"
#include "store/test_descriptor.h"
#include "txn/client.h"
#include "txn/mvcc.h"
#include "txn/region_steps.h"

namespace micedb::txn::testing {

class FakeRegions final : public TxnTransport {
 public:
  // Regions cut at the user keys `splits` (in order), ids 1, 2, ...
  // One-phase commits are admitted as a store's leader would (txn/concurrency.h), each
  // region's first one falling back while its max_ts is fetched.
  explicit FakeRegions(std::vector<std::string> splits = {})
      : cm_([this](std::function<void(Result<uint64_t>)> done) { GetTimestamp(std::move(done)); }),
        steps_({}, &cm_),
        sm_({}, &steps_) {
    std::string start;
    uint64_t id = 1;
    for (const std::string& s : splits) {
      AddRegion(id++, start, EncodeKey(s));
      start = EncodeKey(s);
    }
    AddRegion(id, start, "");
    cache_ = truth_;
  }

  // Splits the region holding user key `at` there; the routing cache is left as it was (stale).
  void Split(const std::string& at) {
    std::lock_guard<std::mutex> l(mu_);
    const std::string k = EncodeKey(at);
    for (size_t i = 0; i < truth_.size(); ++i) {
      store::RegionDescriptor& d = truth_[i];
      if (k > d.start_key() && (d.end_key().empty() || k < d.end_key())) {
        store::RegionDescriptor right = d;
        right.set_id(next_id_++);
        right.set_start_key(k);
        d.set_end_key(k);
        d.mutable_epoch()->set_version(d.epoch().version() + 1);
        right.mutable_epoch()->set_version(d.epoch().version());
        truth_.insert(truth_.begin() + static_cast<long>(i) + 1, right);
        return;
      }
    }
  }

  void GetTimestamps(uint32_t count, std::function<void(Result<uint64_t>)> done) override {
    const uint64_t ts = ComposeTs(physical_ms_.load(), logical_.fetch_add(count) + 1);
    executor_.After(0, [done = std::move(done), ts] { done(ts); });
  }

  std::optional<std::pair<std::string, std::string>> RegionOf(
      std::string_view engine_key) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& d : cache_) {
      if (engine_key >= d.start_key() && (d.end_key().empty() || engine_key < d.end_key())) {
        return std::make_pair(d.start_key(), d.end_key());
      }
    }
    return std::nullopt;
  }

  void Send(pb::TxnRequest req, std::string route_key, std::vector<std::string> keys, bool write,
            int64_t timeout_ms, std::function<void(Result<pb::TxnResponse>)> done) override {
    (void)timeout_ms;
    int64_t delay = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (write && delay_skip_ > 0) {
        delay_skip_--;
      } else if (write && delay_ms_ > 0) {
        delay = std::exchange(delay_ms_, 0);
      }
    }
    executor_.After(delay, [this, req = std::move(req), route_key = std::move(route_key),
                            keys = std::move(keys), write, done = std::move(done)]() mutable {
      done(Run(std::move(req), route_key, keys, write));
    });
  }

  // Moves the oracle's clock (the TTL of locks is judged by it).
  void AdvanceMs(uint64_t ms) {
    physical_ms_ += ms;
    logical_ = 0;
  }
  storage::MemEngine& engine() { return engine_; }
  ConcurrencyManager& concurrency() { return cm_; }
  const OnePcCounters& one_pc() const { return steps_.one_pc_counters(); }
  // Requests the envelope refused (stale epoch, key outside the region).
  uint64_t refused() const { return refused_.load(); }
  // After `skip` more write requests, holds the next one back for `ms` (others go on).
  void DelayWrite(int skip, int64_t ms) {
    std::lock_guard<std::mutex> l(mu_);
    delay_skip_ = skip;
    delay_ms_ = ms;
  }
  // After `skip` more write requests, makes the next `n` fail with Unavailable before they run.
  void FailWrites(int skip, int n) {
    std::lock_guard<std::mutex> l(mu_);
    pass_writes_ = skip;
    fail_writes_ = n;
  }

 private:
  void AddRegion(uint64_t id, std::string start, std::string end) {
    truth_.push_back(store::TestDescriptor(id, std::move(start), std::move(end)));
    next_id_ = id + 1;
  }

  Result<pb::TxnResponse> Run(pb::TxnRequest body, const std::string& route_key,
                              const std::vector<std::string>& keys, bool write) {
    std::lock_guard<std::mutex> l(mu_);
    if (write && pass_writes_ > 0) {
      pass_writes_--;
    } else if (write && fail_writes_ > 0) {
      fail_writes_--;
      return Status::Unavailable("injected: no leader");
    }
    // Routed by the cache, as the router does.
    const store::RegionDescriptor* routed = nullptr;
    for (const auto& d : cache_) {
      if (route_key >= d.start_key() && (d.end_key().empty() || route_key < d.end_key())) {
        routed = &d;
      }
    }
    region::RegionRequest req;
    req.set_format(region::FORMAT_V1);
    *req.mutable_txn() = std::move(body);
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (routed == nullptr) return Status::Unavailable("no region known");
      store::RegionDescriptor* region = nullptr;
      for (auto& d : truth_) {
        if (d.id() == routed->id()) region = &d;
      }
      for (const std::string& k : keys) {
        if (k < routed->start_key() || (!routed->end_key().empty() && k >= routed->end_key())) {
          return Status::Aborted("the request's keys span regions");
        }
      }
      req.mutable_header()->set_region_id(routed->id());
      *req.mutable_header()->mutable_epoch() = routed->epoch();
      region::RegionResponse resp;
      if (!write) {
        resp = store::ServeRead(&sm_, *region, &engine_, nullptr, req);
      } else {
        // What the store does before proposing (one term: the leader never changes here).
        std::optional<region::RegionResponse> refused = store::CheckRequest(*region, req, sm_);
        std::function<void()> release;
        store::TxnRefusal why;
        if (!refused) release = sm_.BeforeProposeTxn(*region, 1, req.mutable_txn(), &why);
        if (!why.message.empty()) return Status::InvalidArgument(why.message);
        storage::WriteBatch wb;
        store::Applier applier(&sm_, *region, &engine_, &wb);
        resp = applier.Apply(store::EncodeEntry(req), LogIndex(++index_), true);
        const bool wrote = engine_.Write(wb, {}).ok();
        if (release) release();
        if (!wrote) return Status::IoError("engine write failed");
      }
      if (!resp.has_error()) {
        if (!resp.txn().invalid().empty()) return Status::InvalidArgument(resp.txn().invalid());
        return std::move(*resp.mutable_txn());
      }
      refused_++;
      if (!resp.error().has_epoch_not_match()) return Status::Internal(resp.error().message());
      // The router's way: take the current descriptors, route again.
      cache_ = truth_;
      routed = nullptr;
      for (const auto& d : cache_) {
        if (route_key >= d.start_key() && (d.end_key().empty() || route_key < d.end_key())) {
          routed = &d;
        }
      }
    }
    return Status::Unavailable("epoch kept changing");
  }

  ConcurrencyManager cm_;
  RegionSteps steps_;
  kv::RegionStateMachine sm_;
  storage::MemEngine engine_;
  std::mutex mu_;
  std::vector<store::RegionDescriptor> truth_;
  std::vector<store::RegionDescriptor> cache_;
  uint64_t next_id_ = 1;
  uint64_t index_ = 0;
  int pass_writes_ = 0;
  int delay_skip_ = 0;
  int64_t delay_ms_ = 0;
  int fail_writes_ = 0;
  // The oracle's clock starts at the wall clock's, as the coordinator's does.
  std::atomic<uint64_t> physical_ms_{static_cast<uint64_t>(SystemClock::Get()->NowWallMillis())};
  std::atomic<uint64_t> logical_{0};
  std::atomic<uint64_t> refused_{0};
  router::ThreadExecutor executor_;  // last: stopped first, before what its work touches
};

}  // namespace micedb::txn::testing
