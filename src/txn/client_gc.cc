// TxnClient::CollectGarbage: the locks below a safe point resolved, then the old versions
// removed, region by region (docs/transactions.md §8).
#include <fmt/format.h>

#include "txn/client.h"
#include "txn/client_core.h"
#include "txn/mvcc.h"

namespace micedb::txn {

namespace {

constexpr uint32_t kGcPage = 1024;    // records one gc entry looks at
constexpr uint32_t kLockPage = 256;   // locks one scan_lock looks at
constexpr int64_t kLocksMs = 60'000;  // how long old locks may take to resolve, in all

// A walk over [start, end) in key order, one region's page at a time: first the locks of
// transactions older than the safe point (each resolved before the walk goes on), then the
// versions.
struct GcWalk {
  std::shared_ptr<ClientCore> core;
  uint64_t safe_point = 0;
  std::string start;
  std::string end;
  std::string cursor;
  bool collecting = false;    // false: resolving locks
  bool resolve_only = false;  // stop after the locks
  int64_t locks_deadline_ms = 0;
  int attempt = 0;
  uint64_t deleted = 0;
  std::function<void(Result<uint64_t>)> done;

  void Finish(Result<uint64_t> r) {
    auto f = std::move(done);
    done = nullptr;  // breaks the cycle walk -> done -> walk
    if (f) f(std::move(r));
  }
};

void GcNext(std::shared_ptr<GcWalk> w) {
  auto step = std::make_shared<Step>();
  step->ekeys = {EncodeKey(w->cursor)};
  step->write = w->collecting;
  step->deadline_ms = w->core->Deadline();
  step->make = [w](const std::vector<size_t>&) {
    pb::TxnRequest req;
    if (w->collecting) {
      pb::GcRequest* g = req.mutable_gc();
      g->set_start(w->cursor);
      g->set_end(w->end);
      g->set_safe_point(w->safe_point);
      g->set_limit(kGcPage);  // the same on every replica, whatever its defaults
    } else {
      pb::ScanLockRequest* s = req.mutable_scan_lock();
      s->set_start(w->cursor);
      s->set_end(w->end);
      s->set_max_start_ts(w->safe_point);
      s->set_limit(kLockPage);
    }
    return req;
  };
  auto locks = std::make_shared<std::vector<pb::LockInfo>>();
  auto finished = std::make_shared<bool>(false);
  auto next = std::make_shared<std::string>();
  step->take = [w, locks, finished, next](const std::vector<size_t>&, pb::TxnResponse& resp) {
    if (w->collecting) {
      if (!resp.has_gc()) return Verdict::Fail(Status::Internal("no gc answer"));
      w->deleted += resp.gc().deleted();
      *finished = resp.gc().done();
      *next = resp.gc().resume_key();
    } else {
      if (!resp.has_scan_lock()) return Verdict::Fail(Status::Internal("no scan_lock answer"));
      for (const auto& l : resp.scan_lock().locks()) locks->push_back(l);
      *finished = resp.scan_lock().done();
      *next = resp.scan_lock().resume_key();
    }
    return Verdict::Done();
  };
  step->done = [w, locks, finished, next](Status st) {
    if (!st.ok()) return w->Finish(std::move(st));
    if (!locks->empty()) {
      if (w->core->NowMs() >= w->locks_deadline_ms) {
        return w->Finish(Status::TimedOut(fmt::format(
            "the lock of transaction {} on {:?}, below the safe point, was not resolved in time",
            locks->front().start_ts(), locks->front().key())));
      }
      // Resolved, then the same page again: it moves on once no old lock is left in it.
      return w->core->Resolve(std::move(*locks), w->attempt++, w->core->Deadline(),
                              [w](Result<int64_t> wait) {
                                if (!wait.ok()) return w->Finish(wait.status());
                                w->core->After(*wait, [w] { GcNext(w); });
                              });
    }
    w->attempt = 0;
    if (*finished) {
      if (w->collecting || w->resolve_only) return w->Finish(w->deleted);
      w->collecting = true;
      w->cursor = w->start;
    } else {
      w->cursor = std::move(*next);
    }
    // Through the executor: an answer given on this thread would nest one call per page.
    w->core->After(0, [w] { GcNext(w); });
  };
  w->core->Run(std::move(step));
}

}  // namespace

void TxnClient::CollectGarbage(std::string start, std::string end, uint64_t safe_point,
                               std::function<void(Result<uint64_t>)> done) {
  RunGc(std::move(start), std::move(end), safe_point, false, std::move(done));
}

void TxnClient::ResolveLocksBelow(uint64_t safe_point, std::function<void(Status)> done) {
  RunGc("", "", safe_point, true,
        [done = std::move(done)](Result<uint64_t> r) { done(r.ok() ? Status::OK() : r.status()); });
}

void TxnClient::RunGc(std::string start, std::string end, uint64_t safe_point, bool resolve_only,
                      std::function<void(Result<uint64_t>)> done) {
  if (safe_point == 0) return done(Status::InvalidArgument("the safe point is 0"));
  auto w = std::make_shared<GcWalk>();
  w->resolve_only = resolve_only;
  w->locks_deadline_ms = core_->NowMs() + kLocksMs;
  w->core = core_;
  w->safe_point = safe_point;
  w->start = std::move(start);
  w->end = std::move(end);
  w->cursor = w->start;
  w->done = std::move(done);
  GcNext(w);
}

}  // namespace micedb::txn
