// GC at each node (docs/transactions.md §8): the coordinator's safe point, learned from store
// heartbeat replies, is given to the txn layer (reads and prewrites below it refused), and
// every region this node leads is collected at it through the transaction client: the locks
// below it resolved first, then the old versions removed by raft entries, so that every
// replica removes the same.
#include <fmt/format.h>

#include <chrono>

#include "common/clock.h"
#include "common/logging.h"
#include "server/node.h"
#include "store/keys.h"

namespace micedb::server {

namespace {
constexpr int64_t kGcRetryMs = 10'000;  // after a run that failed

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

}  // namespace micedb::server
