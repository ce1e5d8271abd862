// GC at each node (docs/transactions.md §8): the coordinator's safe point, learned from store
// heartbeat replies, is given to the txn layer (reads and prewrites below it refused), and
// every region this node leads is collected at it through the transaction client: the locks
// below it resolved first, then the old versions removed by raft entries, so that every
// replica removes the same. Also the sweep of Redis cross-region intents nobody meets
// (docs/kv-format.md "The sweep").
#include <fmt/format.h>

#include <chrono>

#include "common/clock.h"
#include "common/logging.h"
#include "kv/value_format.h"
#include "micedb/kv.pb.h"
#include "server/node.h"
#include "store/keys.h"

namespace micedb::server {

namespace {
constexpr int64_t kGcRetryMs = 10'000;  // after a run that failed
// One sweep's work: lock records examined over every region led here, and intents taken
// up (the rest wait for the next sweep).
constexpr size_t kSweepMaxRecords = 10'000;
constexpr size_t kSweepMaxIntents = 256;

int64_t MonoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::Get()->NowMonotonic())
      .count();
}
}  // namespace

void Node::OnGcSafePoint(uint64_t sp) {
  if (coord_stopping_ || !txn_client_ || !txn_steps_) return;
  txn_steps_->RaiseSafePoint(sp);  // also with 0: the node now knows how far GC went
  txn_client_->RaiseSafePoint(sp);
  if (sp == 0 || gc_running_ || sp <= gc_done_ || MonoMs() < gc_next_try_ms_) return;
  auto ranges = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  for (const auto& r : *store_->RegionsShared()) {
    if (store::IsMetaRegion(r.descriptor.id()) || r.raft.role != raft::Role::kLeader) continue;
    const txn::UserRange range = txn::UserRangeOfRegion(r.descriptor);
    if (range.empty || range.malformed) continue;
    ranges->emplace_back(range.start, range.end.value_or(""));
  }
  gc_running_ = true;
  // Locks first, over every region (§8): only then may any version at sp go here.
  txn_client_->ResolveLocksBelow(sp, [this, ranges, sp](Status st) {
    coord_executor_->After(0, [this, ranges, sp, st] {
      if (coord_stopping_) return;
      if (!st.ok()) return GcFailed(sp, "", st);
      RunGc(ranges, 0, sp);
    });
  });
}

void Node::GcFailed(uint64_t sp, const std::string& from, const Status& why) {
  gc_running_ = false;
  gc_failures_++;
  gc_next_try_ms_ = MonoMs() + kGcRetryMs;
  GetLogger("txn")->info("GC at safe point {} stopped at {:?}: {}", sp, from, why.ToString());
}

void Node::RunGc(std::shared_ptr<std::vector<std::pair<std::string, std::string>>> ranges, size_t i,
                 uint64_t sp) {
  if (coord_stopping_) return;
  if (i == ranges->size()) {
    gc_running_ = false;
    gc_done_ = sp;
    gc_runs_++;
    return;
  }
  const auto& [start, end] = (*ranges)[i];
  txn_client_->CollectGarbage(start, end, sp, [this, ranges, i, sp](Result<uint64_t> r) {
    // Back on the coordinator executor, which stops (dropping this) before the node goes.
    coord_executor_->After(0, [this, ranges, i, sp, r = std::move(r)] {
      if (coord_stopping_) return;
      if (!r.ok()) return GcFailed(sp, (*ranges)[i].first, r.status());
      gc_deleted_ += *r;
      RunGc(ranges, i + 1, sp);
    });
  });
}

void Node::MaybeSweepIntents() {
  const int64_t every = options_.intent_sweep_interval_ms;
  if (every <= 0 || coord_stopping_ || !backend_) return;
  const int64_t now = MonoMs();
  if (next_intent_sweep_ms_ == 0) next_intent_sweep_ms_ = now + every;  // not at start
  if (now < next_intent_sweep_ms_) return;
  next_intent_sweep_ms_ = now + every;
  // The local replica of each region led here, read directly: a record seen here that is
  // stale (resolved since) only costs a CheckIntent, and the resolution itself goes through
  // the primary's leader as any reader's does.
  const int64_t wall = SystemClock::Get()->NowWallMillis();
  const std::string raw_begin(1, kv::kRawKeyPrefix);
  const std::string raw_end(1, static_cast<char>(kv::kRawKeyPrefix + 1));
  std::vector<kv::LockInfo> expired;
  size_t examined = 0;
  for (const auto& r : *store_->RegionsShared()) {
    if (store::IsMetaRegion(r.descriptor.id()) || r.raft.role != raft::Role::kLeader) continue;
    const std::string& start = r.descriptor.start_key();
    const std::string& end = r.descriptor.end_key();
    storage::ReadOptions ro;
    ro.lower_bound = std::max(start, raw_begin);
    ro.upper_bound = end.empty() ? raw_end : std::min(end, raw_end);
    if (*ro.lower_bound >= *ro.upper_bound) continue;
    auto it = engine_->NewIterator(storage::Cf::kLock, ro);
    for (it->Seek(*ro.lower_bound); it->Valid(); it->Next()) {
      if (++examined > kSweepMaxRecords || expired.size() >= kSweepMaxIntents) break;
      kv::IntentRecord rec;
      if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      if (rec.txn_id() == 0 || rec.expire_at_ms() >= wall) continue;
      kv::LockInfo& lock = expired.emplace_back();
      lock.set_key(std::string(kv::DecodeRawKey(it->key())));
      lock.set_txn_id(rec.txn_id());
      lock.set_primary(rec.primary());
      lock.set_expire_at_ms(rec.expire_at_ms());
    }
    if (examined > kSweepMaxRecords || expired.size() >= kSweepMaxIntents) break;
  }
  for (const kv::LockInfo& lock : expired) backend_->SweepIntent(lock, [](bool) {});
}

}  // namespace micedb::server
