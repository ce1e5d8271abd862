#include "txn/region_steps.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "common/logging.h"

namespace micedb::txn {

namespace {

[[noreturn]] void StorageFailure(const Status& st) {
  // As kv's state machine: a replica that cannot read its own engine must stop, or its state
  // could come to differ from the other replicas'.
  GetLogger("txn")->critical("transaction step storage failure: {}", st.ToString());
  std::fprintf(stderr, "micedb: fatal: transaction step storage failure: %s\n",
               st.ToString().c_str());
  std::abort();
}

pb::LockInfo::Kind KindOf(LockKind k) {
  switch (k) {
    case LockKind::kPut:
      return pb::LockInfo::PUT;
    case LockKind::kDelete:
      return pb::LockInfo::DELETE;
    case LockKind::kLock:
      return pb::LockInfo::LOCK;
  }
  return pb::LockInfo::KIND_UNSPECIFIED;
}

pb::KeyError::Kind KindOf(TxnError::Kind k) {
  switch (k) {
    case TxnError::Kind::kKeyIsLocked:
      return pb::KeyError::KEY_IS_LOCKED;
    case TxnError::Kind::kWriteConflict:
      return pb::KeyError::WRITE_CONFLICT;
    case TxnError::Kind::kTxnAborted:
      return pb::KeyError::TXN_ABORTED;
    case TxnError::Kind::kTxnLockNotFound:
      return pb::KeyError::TXN_LOCK_NOT_FOUND;
    case TxnError::Kind::kTxnCommitted:
      return pb::KeyError::TXN_COMMITTED;
  }
  return pb::KeyError::KEY_IS_LOCKED;
}

// Unwraps an action's result: a storage failure stops the process; a refusal of the input
// (InvalidArgument) becomes the response's `invalid`.
template <typename T>
bool Take(Result<T> r, T* out, pb::TxnResponse* resp) {
  if (r.ok()) {
    *out = std::move(r).value();
    return true;
  }
  if (r.status().code() == StatusCode::kInvalidArgument) {
    resp->set_invalid(std::string(r.status().message()));
    return false;
  }
  StorageFailure(r.status());
}

// The part of [start, end) (end empty: no end) inside the region: false when none of it is.
bool Clip(const UserRange& range, const std::string& start, const std::string& end,
          std::string* from, std::string* to) {
  if (range.empty) return false;
  *from = std::max(start, range.start);
  *to = end;
  if (range.end && (to->empty() || *range.end < *to)) *to = *range.end;
  return to->empty() || *from < *to;
}

// Whether the region ends before `end` (empty: no end): the range goes on in the next region.
bool GoesOn(const UserRange& range, const std::string& end) {
  return range.end && (end.empty() || *range.end < end);
}

uint32_t LimitOf(uint32_t asked, const RegionStepsOptions& o) {
  return asked == 0 ? o.default_scan_limit : asked;
}

// A range step's part in the region: [*from, *to) of [start, end). False when there is
// nothing to do here: the region's bounds are malformed (resp's invalid set), or none of the
// range lies in it (*out then says done, or where the next region starts).
template <typename Out>
bool ClipStep(const store::RegionDescriptor& region, const std::string& start,
              const std::string& end, UserRange* range, std::string* from, std::string* to,
              Out* out, pb::TxnResponse* resp) {
  *range = UserRangeOfRegion(region);
  if (range->malformed) {
    resp->set_invalid("the region's bounds lie inside transactional keys");
    return false;
  }
  if (!Clip(*range, start, end, from, to)) {
    out->set_done(!GoesOn(*range, end));
    if (!out->done()) out->set_resume_key(*range->end);
    return false;
  }
  return true;
}

// Where a range step goes on after this region's page: `next` inside the region, else the
// next region's start, else done.
template <typename Out>
void SetResume(const UserRange& range, const std::string& end, std::optional<std::string> next,
               Out* out) {
  if (next) {
    out->set_resume_key(std::move(*next));
  } else if (GoesOn(range, end)) {
    out->set_resume_key(*range.end);
  } else {
    out->set_done(true);
  }
}

}  // namespace

UserRange UserRangeOfRegion(const store::RegionDescriptor& region) {
  UserRange out;
  const std::string_view prefix(&kTxnPrefix, 1);
  const std::string& s = region.start_key();
  const std::string& e = region.end_key();
  if (!e.empty() && e <= prefix) out.empty = true;
  if (s >= kTxnKeysEnd) out.empty = true;
  if (out.empty) return out;
  if (s > prefix) {
    auto k = DecodeKey(s);
    if (!k.ok()) {
      out.malformed = true;
      return out;
    }
    out.start = std::move(k).value();
  }
  if (!e.empty() && e < kTxnKeysEnd) {
    auto k = DecodeKey(e);
    if (!k.ok()) {
      out.malformed = true;
      return out;
    }
    out.end = std::move(k).value();
  }
  return out;
}

pb::LockInfo ToProto(const Lock& lock, std::string_view key, bool with_secondaries) {
  pb::LockInfo out;
  out.set_key(std::string(key));
  out.set_primary(lock.primary);
  out.set_start_ts(lock.start_ts);
  out.set_ttl_ms(lock.ttl_ms);
  out.set_txn_size(lock.txn_size);
  out.set_kind(KindOf(lock.kind));
  out.set_use_async_commit(lock.use_async_commit);
  out.set_min_commit_ts(lock.min_commit_ts);
  if (with_secondaries) {
    for (const std::string& k : lock.secondaries) out.add_secondaries(k);
  }
  return out;
}

pb::KeyError ToProto(const TxnError& e) {
  pb::KeyError out;
  out.set_kind(KindOf(e.kind));
  out.set_key(e.key);
  out.set_start_ts(e.start_ts);
  if (e.kind == TxnError::Kind::kKeyIsLocked) *out.mutable_lock() = ToProto(e.lock, e.key);
  out.set_conflict_start_ts(e.conflict_start_ts);
  out.set_conflict_commit_ts(e.conflict_commit_ts);
  out.set_message(e.Message());
  return out;
}

std::optional<std::string> RegionSteps::Invalid(const pb::TxnRequest& req) const {
  const size_t max = options_.max_request_keys;
  auto too_many = [&](int n) -> std::optional<std::string> {
    if (static_cast<size_t>(n) <= max) return std::nullopt;
    return fmt::format("{} keys in one request; at most {}", n, max);
  };
  auto over_limit = [&](const char* step, uint32_t limit) -> std::optional<std::string> {
    if (limit <= options_.max_scan_limit) return std::nullopt;
    return fmt::format("{}: limit {} is above the most, {}", step, limit, options_.max_scan_limit);
  };
  switch (req.cmd_case()) {
    case pb::TxnRequest::kGet:
      if (req.get().read_ts() == 0) return "get: read_ts is 0";
      return std::nullopt;
    case pb::TxnRequest::kBatchGet:
      if (req.batch_get().read_ts() == 0) return "batch_get: read_ts is 0";
      return too_many(req.batch_get().keys_size());
    case pb::TxnRequest::kScan:
      if (req.scan().read_ts() == 0) return "scan: read_ts is 0";
      return over_limit("scan", req.scan().limit());
    case pb::TxnRequest::kPrewrite: {
      const pb::PrewriteRequest& p = req.prewrite();
      if (p.start_ts() == 0) return "prewrite: start_ts is 0";
      if (p.mutations_size() == 0) return "prewrite: no mutations";
      if (p.use_async_commit() && p.one_pc_commit_ts() != 0) {
        return "prewrite: both one_pc_commit_ts and use_async_commit";
      }
      if (p.use_async_commit() && p.min_commit_ts() <= p.start_ts()) {
        return fmt::format("prewrite: async commit with min_commit_ts {} not above start_ts {}",
                           p.min_commit_ts(), p.start_ts());
      }
      if (static_cast<size_t>(p.secondaries_size()) > max) {
        return fmt::format("prewrite: {} secondaries; at most {}", p.secondaries_size(), max);
      }
      if (p.one_pc_commit_ts() != 0 && p.one_pc_commit_ts() <= p.start_ts()) {
        return fmt::format("prewrite: one_pc_commit_ts {} is not above start_ts {}",
                           p.one_pc_commit_ts(), p.start_ts());
      }
      return too_many(p.mutations_size());
    }
    case pb::TxnRequest::kCommit:
      if (req.commit().start_ts() == 0) return "commit: start_ts is 0";
      if (req.commit().commit_ts() <= req.commit().start_ts()) {
        return fmt::format("commit: commit_ts {} is not above start_ts {}",
                           req.commit().commit_ts(), req.commit().start_ts());
      }
      return too_many(req.commit().keys_size());
    case pb::TxnRequest::kRollback:
      if (req.rollback().start_ts() == 0) return "rollback: start_ts is 0";
      return too_many(req.rollback().keys_size());
    case pb::TxnRequest::kCheckTxnStatus:
      if (req.check_txn_status().start_ts() == 0) return "check_txn_status: start_ts is 0";
      if (req.check_txn_status().current_ts() == 0) return "check_txn_status: current_ts is 0";
      return std::nullopt;
    case pb::TxnRequest::kResolveLock: {
      const pb::ResolveLockRequest& r = req.resolve_lock();
      if (r.start_ts() == 0) return "resolve_lock: start_ts is 0";
      if (r.commit_ts() != 0 && r.commit_ts() <= r.start_ts()) {
        return fmt::format("resolve_lock: commit_ts {} is not above start_ts {}", r.commit_ts(),
                           r.start_ts());
      }
      if (auto why = over_limit("resolve_lock", r.limit())) return why;
      return too_many(r.keys_size());
    }
    case pb::TxnRequest::kHeartBeat:
      if (req.heart_beat().start_ts() == 0) return "heart_beat: start_ts is 0";
      return std::nullopt;
    case pb::TxnRequest::kCheckSecondaryLocks:
      if (req.check_secondary_locks().start_ts() == 0) {
        return "check_secondary_locks: start_ts is 0";
      }
      if (req.check_secondary_locks().keys_size() == 0) return "check_secondary_locks: no keys";
      return too_many(req.check_secondary_locks().keys_size());
    case pb::TxnRequest::kScanLock:
      if (req.scan_lock().max_start_ts() == 0) return "scan_lock: max_start_ts is 0";
      return over_limit("scan_lock", req.scan_lock().limit());
    case pb::TxnRequest::kGc:
      if (req.gc().safe_point() == 0) return "gc: safe_point is 0";
      return over_limit("gc", req.gc().limit());
    case pb::TxnRequest::CMD_NOT_SET:
      break;
  }
  return "the transactional request names no step";
}

void RegionSteps::EngineKeys(const pb::TxnRequest& req, std::vector<std::string>* keys) const {
  auto add = [keys](const std::string& k) { keys->push_back(EncodeKey(k)); };
  switch (req.cmd_case()) {
    case pb::TxnRequest::kGet:
      add(req.get().key());
      break;
    case pb::TxnRequest::kBatchGet:
      for (const auto& k : req.batch_get().keys()) add(k);
      break;
    case pb::TxnRequest::kPrewrite:
      for (const auto& m : req.prewrite().mutations()) add(m.key());
      break;
    case pb::TxnRequest::kCommit:
      for (const auto& k : req.commit().keys()) add(k);
      break;
    case pb::TxnRequest::kRollback:
      for (const auto& k : req.rollback().keys()) add(k);
      break;
    case pb::TxnRequest::kCheckTxnStatus:
      add(req.check_txn_status().primary());
      break;
    case pb::TxnRequest::kResolveLock:
      for (const auto& k : req.resolve_lock().keys()) add(k);
      // A range resolve starts inside the region it was routed to.
      if (req.resolve_lock().keys_size() == 0) add(req.resolve_lock().start());
      break;
    case pb::TxnRequest::kHeartBeat:
      add(req.heart_beat().primary());
      break;
    case pb::TxnRequest::kCheckSecondaryLocks:
      for (const auto& k : req.check_secondary_locks().keys()) add(k);
      break;
    case pb::TxnRequest::kScan:  // starts inside the region it was routed to
      add(req.scan().start());
      break;
    case pb::TxnRequest::kScanLock:
      add(req.scan_lock().start());
      break;
    case pb::TxnRequest::kGc:
      add(req.gc().start());
      break;
    case pb::TxnRequest::CMD_NOT_SET:
      break;
  }
}

std::optional<std::string> RegionSteps::TooOld(const pb::TxnRequest& req) const {
  uint64_t ts = 0;
  switch (req.cmd_case()) {
    case pb::TxnRequest::kGet:
      ts = req.get().read_ts();
      break;
    case pb::TxnRequest::kBatchGet:
      ts = req.batch_get().read_ts();
      break;
    case pb::TxnRequest::kScan:
      ts = req.scan().read_ts();
      break;
    default:
      return std::nullopt;
  }
  // One read far ahead would stop every one-phase commit of this store (max_ts).
  if (options_.clock != nullptr &&
      PhysicalMs(ts) > static_cast<uint64_t>(options_.clock->NowWallMillis()) + 60'000) {
    return fmt::format("read_ts {} is in the future; read at a timestamp from the TSO", ts);
  }
  const uint64_t sp = safe_point_.load();
  if (ts >= sp) return std::nullopt;
  return fmt::format(
      "snapshot too old: reading at {}, below the GC safe point {} (versions older than "
      "--gc-life-time may be gone); read at a later timestamp",
      ts, sp);
}

uint64_t RegionSteps::ReadWait(const pb::TxnRequest& req) const {
  if (!safe_point_known_.load()) return 50;
  if (TooOld(req)) return 0;  // refused when served, without raising max_ts
  if (cm_ == nullptr || MayRead(req)) return 0;
  counters_.reads_held++;
  return 1;
}

bool RegionSteps::MayRead(const pb::TxnRequest& req) const {
  switch (req.cmd_case()) {
    case pb::TxnRequest::kGet:
      return cm_->ReadKey(EncodeKey(req.get().key()), req.get().read_ts());
    case pb::TxnRequest::kBatchGet: {
      bool ok = true;  // every key's read raises max_ts
      for (const auto& k : req.batch_get().keys()) {
        ok = cm_->ReadKey(EncodeKey(k), req.batch_get().read_ts()) && ok;
      }
      return ok;
    }
    case pb::TxnRequest::kScan:
      return cm_->ReadRange(EncodeKey(req.scan().start()),
                            req.scan().end().empty() ? std::string() : EncodeKey(req.scan().end()),
                            req.scan().read_ts());
    default:
      return true;
  }
}

void RegionSteps::RaiseSafePoint(uint64_t sp) const {
  uint64_t cur = safe_point_.load();
  while (cur < sp && !safe_point_.compare_exchange_weak(cur, sp)) {
  }
  safe_point_known_.store(true);
}

std::function<void()> RegionSteps::BeforePropose(const store::RegionDescriptor& region,
                                                 uint64_t term, pb::TxnRequest* req,
                                                 store::TxnRefusal* refused) const {
  if (req->has_gc() && options_.clock != nullptr &&
      PhysicalMs(req->gc().safe_point()) >
          static_cast<uint64_t>(options_.clock->NowWallMillis()) + 1000) {
    refused->message = fmt::format("gc: safe point {} is in the future", req->gc().safe_point());
    return nullptr;
  }
  if (!req->has_prewrite()) return nullptr;
  if (!safe_point_known_.load()) {
    refused->message = "this node has not learned the GC safe point yet (it just started)";
    refused->retry_ms = 50;
    return nullptr;
  }
  // Its conflict check could miss a change GC has collected (a delete below the safe point;
  // its own rollback record at start_ts, at the safe point itself).
  if (const uint64_t sp = safe_point_.load(); sp != 0 && req->prewrite().start_ts() <= sp) {
    refused->message = fmt::format(
        "the transaction started at {}, at or below the GC safe point {} (it ran longer than "
        "--gc-life-time); retry it",
        req->prewrite().start_ts(), sp);
    return nullptr;
  }
  pb::PrewriteRequest* p = req->mutable_prewrite();
  // Only the leader computes it (a value from the client could be below a read served here).
  p->set_min_commit_ts(0);
  if (p->use_async_commit()) return AdmitAsync(region, term, p);
  if (req->prewrite().one_pc_commit_ts() == 0) return nullptr;
  if (Invalid(*req)) return nullptr;  // refused as such when applied
  if (cm_ == nullptr) {
    p->set_one_pc_commit_ts(0);
    return nullptr;
  }
  std::vector<std::string> ekeys;
  ekeys.reserve(p->mutations_size());
  for (const pb::Mutation& m : p->mutations()) ekeys.push_back(EncodeKey(m.key()));
  uint64_t token = 0;
  switch (cm_->TryLock(region.id(), term, region.epoch().version(), ekeys, p->one_pc_commit_ts(),
                       &token)) {
    case ConcurrencyManager::Refusal::kNone:
      counters_.admitted++;
      return [cm = cm_, token] { cm->Unlock(token); };
    case ConcurrencyManager::Refusal::kNotSynced:
      counters_.not_synced++;
      break;
    case ConcurrencyManager::Refusal::kReadAbove:
      counters_.read_above++;
      break;
    case ConcurrencyManager::Refusal::kKeyBusy:
      counters_.key_busy++;
      break;
  }
  p->set_one_pc_commit_ts(0);  // two phases: locks now, a commit_ts drawn after them
  return nullptr;
}

std::function<void()> RegionSteps::AdmitAsync(const store::RegionDescriptor& region, uint64_t term,
                                              pb::PrewriteRequest* p) const {
  if (p->one_pc_commit_ts() != 0 || p->start_ts() == 0) return nullptr;  // refused when applied
  uint64_t token = 0;
  uint64_t min_commit_ts = 0;
  ConcurrencyManager::Refusal why = ConcurrencyManager::Refusal::kNotSynced;
  if (cm_ != nullptr) {
    std::vector<std::string> ekeys;
    ekeys.reserve(p->mutations_size());
    for (const pb::Mutation& m : p->mutations()) ekeys.push_back(EncodeKey(m.key()));
    why = cm_->TryLockAsync(region.id(), term, region.epoch().version(), ekeys, p->start_ts(),
                            p->max_commit_ts(), &min_commit_ts, &token);
  }
  if (why == ConcurrencyManager::Refusal::kNone) {
    counters_.async_admitted++;
    p->set_min_commit_ts(min_commit_ts);
    return [cm = cm_, token] { cm->Unlock(token); };
  }
  // Two phases: plain locks; the answer's min_commit_ts 0 tells the client so.
  counters_.async_fallbacks++;
  p->set_use_async_commit(false);
  p->clear_secondaries();
  return nullptr;
}

pb::TxnResponse RegionSteps::Read(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                                  kv::ReadView* view) const {
  pb::TxnResponse resp;
  if (auto why = Invalid(req)) {
    resp.set_invalid(*why);
    return resp;
  }
  if (!safe_point_known_.load() && req.cmd_case() != pb::TxnRequest::kScanLock) {
    resp.set_retry_after_ms(50);  // just started: how far GC went is not known yet
    return resp;
  }
  if (auto why = TooOld(req)) {
    resp.set_invalid(*why);
    return resp;
  }
  if (cm_ != nullptr && !MayRead(req)) {
    counters_.reads_held++;
    resp.set_retry_after_ms(1);
    return resp;
  }
  MvccReader r(view);
  switch (req.cmd_case()) {
    case pb::TxnRequest::kGet: {
      GetResult g;
      if (!Take(Get(r, req.get().key(), req.get().read_ts()), &g, &resp)) return resp;
      pb::GetResponse* out = resp.mutable_get();
      if (g.locked) {
        *out->mutable_locked() = ToProto(*g.locked);
      } else if (g.value) {
        out->set_found(true);
        out->set_value(std::move(*g.value));
      }
      return resp;
    }
    case pb::TxnRequest::kBatchGet: {
      pb::BatchGetResponse* out = resp.mutable_batch_get();
      for (const std::string& key : req.batch_get().keys()) {
        GetResult g;
        if (!Take(Get(r, key, req.batch_get().read_ts()), &g, &resp)) return resp;
        if (g.locked) {
          *out->add_locked() = ToProto(*g.locked);
        } else if (g.value) {
          pb::KvPair* kv = out->add_pairs();
          kv->set_key(key);
          kv->set_value(std::move(*g.value));
        }
      }
      return resp;
    }
    case pb::TxnRequest::kScan: {
      const pb::ScanRequest& s = req.scan();
      pb::ScanResponse* out = resp.mutable_scan();
      UserRange range;
      std::string from, to;
      if (!ClipStep(region, s.start(), s.end(), &range, &from, &to, out, &resp)) return resp;
      ScanResult got;
      if (!Take(Scan(r, from, to, s.read_ts(), LimitOf(s.limit(), options_)), &got, &resp)) {
        return resp;
      }
      for (auto& [k, v] : got.kvs) {
        pb::KvPair* kv = out->add_pairs();
        kv->set_key(std::move(k));
        kv->set_value(std::move(v));
      }
      if (got.locked) *out->mutable_locked() = ToProto(*got.locked);
      SetResume(range, s.end(), std::move(got.next), out);
      return resp;
    }
    case pb::TxnRequest::kScanLock: {
      const pb::ScanLockRequest& s = req.scan_lock();
      pb::ScanLockResponse* out = resp.mutable_scan_lock();
      UserRange range;
      std::string from, to;
      if (!ClipStep(region, s.start(), s.end(), &range, &from, &to, out, &resp)) return resp;
      // Every lock looked at counts against the limit, the ones not taken too.
      bool more = false;
      std::vector<MvccReader::KeyLock> locks;
      if (!Take(r.ScanLocks(EncodeKey(from), to.empty() ? std::string() : EncodeKey(to),
                            LimitOf(s.limit(), options_), &more),
                &locks, &resp)) {
        return resp;
      }
      for (const auto& kl : locks) {
        if (kl.lock.start_ts >= s.max_start_ts()) continue;
        std::string key;
        if (!Take(DecodeKey(kl.ekey), &key, &resp)) return resp;
        *out->add_locks() = ToProto(kl.lock, key);
      }
      std::optional<std::string> next;
      if (more && !locks.empty()) {
        std::string last;
        if (!Take(DecodeKey(locks.back().ekey), &last, &resp)) return resp;
        last.push_back('\0');
        next = std::move(last);
      }
      SetResume(range, s.end(), std::move(next), out);
      return resp;
    }
    default:
      resp.set_invalid("this transactional step is a write, not a read");
      return resp;
  }
}

pb::TxnResponse RegionSteps::Apply(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                                   kv::ApplyBatch* batch) const {
  pb::TxnResponse resp;
  if (auto why = Invalid(req)) {
    resp.set_invalid(*why);
    return resp;
  }
  MvccReader r(batch);
  std::optional<TxnError> err;
  switch (req.cmd_case()) {
    case pb::TxnRequest::kPrewrite: {
      const pb::PrewriteRequest& p = req.prewrite();
      TxnMeta meta;
      meta.primary = p.primary();
      meta.start_ts = p.start_ts();
      meta.txn_size = std::max<uint64_t>(p.txn_size(), p.mutations_size());
      meta.ttl_ms = p.ttl_ms() != 0 ? p.ttl_ms() : DefaultTtlMs(meta.txn_size);
      if (p.use_async_commit()) {
        meta.use_async_commit = true;
        meta.min_commit_ts = p.min_commit_ts();
        meta.secondaries.assign(p.secondaries().begin(), p.secondaries().end());
      }
      pb::PrewriteResponse* out = resp.mutable_prewrite();
      auto convert = [](const pb::Mutation& m) {
        txn::Mutation one;
        one.op = m.op() == pb::Mutation::PUT      ? txn::Mutation::Op::kPut
                 : m.op() == pb::Mutation::DELETE ? txn::Mutation::Op::kDelete
                                                  : txn::Mutation::Op::kLock;
        one.key = m.key();
        one.value = m.value();
        return one;
      };
      if (p.one_pc_commit_ts() != 0) {
        std::vector<txn::Mutation> all;
        all.reserve(p.mutations_size());
        for (const pb::Mutation& m : p.mutations()) all.push_back(convert(m));
        OnePcResult got;
        if (!Take(OnePc(r, batch, meta, all, p.one_pc_commit_ts()), &got, &resp)) return resp;
        for (const TxnError& e : got.errors) *out->add_errors() = ToProto(e);
        out->set_one_pc_commit_ts(got.committed_at);
        if (got.committed_at != 0) counters_.committed++;
        return resp;
      }
      uint64_t committed_at = 0;
      // The largest min_commit_ts of the keys' locks, while every one is an async lock.
      uint64_t min_commit_ts = 0;
      bool all_async = true;
      for (const pb::Mutation& m : p.mutations()) {
        uint64_t key_min = 0;
        if (!Take(Prewrite(r, batch, meta, convert(m), &committed_at, &key_min), &err, &resp)) {
          return resp;
        }
        if (err) {
          *out->add_errors() = ToProto(*err);
        } else if (key_min == 0) {
          all_async = false;  // a two-phase lock (or a commit record, handled below)
        } else {
          min_commit_ts = std::max(min_commit_ts, key_min);
        }
      }
      if (all_async && out->errors_size() == 0) out->set_min_commit_ts(min_commit_ts);
      // A duplicate of a commit that applied (a retried one-phase commit that came back as a
      // plain prewrite): the transaction is committed, at the time its records say.
      if (committed_at != 0 && out->errors_size() == 0) out->set_one_pc_commit_ts(committed_at);
      return resp;
    }
    case pb::TxnRequest::kCommit: {
      const pb::CommitRequest& c = req.commit();
      pb::CommitResponse* out = resp.mutable_commit();
      for (const std::string& key : c.keys()) {
        if (!Take(Commit(r, batch, key, c.start_ts(), c.commit_ts()), &err, &resp)) return resp;
        if (err) {
          *out->mutable_error() = ToProto(*err);
          break;
        }
      }
      return resp;
    }
    case pb::TxnRequest::kRollback: {
      const pb::RollbackRequest& rb = req.rollback();
      pb::RollbackResponse* out = resp.mutable_rollback();
      for (const std::string& key : rb.keys()) {
        if (!Take(Rollback(r, batch, key, rb.start_ts(), rb.protect()), &err, &resp)) return resp;
        if (err) {
          *out->mutable_error() = ToProto(*err);
          break;
        }
      }
      return resp;
    }
    case pb::TxnRequest::kCheckTxnStatus: {
      const pb::CheckTxnStatusRequest& c = req.check_txn_status();
      TxnStatus st;
      if (!Take(CheckTxnStatus(r, batch, c.primary(), c.start_ts(), c.current_ts(),
                               c.force_sync_commit()),
                &st, &resp)) {
        return resp;
      }
      pb::CheckTxnStatusResponse* out = resp.mutable_check_txn_status();
      switch (st.state) {
        case TxnStatus::State::kAlive:
          out->set_state(pb::CheckTxnStatusResponse::ALIVE);
          out->set_ttl_left_ms(st.ttl_left_ms);
          if (st.lock) {
            *out->mutable_lock() = ToProto(*st.lock, c.primary(), /*with_secondaries=*/true);
          }
          break;
        case TxnStatus::State::kCommitted:
          out->set_state(pb::CheckTxnStatusResponse::COMMITTED);
          out->set_commit_ts(st.commit_ts);
          break;
        case TxnStatus::State::kRolledBack:
          out->set_state(pb::CheckTxnStatusResponse::ROLLED_BACK);
          break;
      }
      return resp;
    }
    case pb::TxnRequest::kResolveLock: {
      const pb::ResolveLockRequest& rl = req.resolve_lock();
      pb::ResolveLockResponse* out = resp.mutable_resolve_lock();
      ResolveResult got;
      if (rl.keys_size() > 0) {
        uint64_t resolved = 0;
        for (const std::string& key : rl.keys()) {
          std::string after = key;
          after.push_back('\0');
          if (!Take(ResolveLocks(r, batch, key, after, rl.start_ts(), rl.commit_ts(), 1), &got,
                    &resp)) {
            return resp;
          }
          resolved += got.resolved;
        }
        out->set_resolved(resolved);
        out->set_done(true);
        return resp;
      }
      UserRange range;
      std::string from, to;
      if (!ClipStep(region, rl.start(), rl.end(), &range, &from, &to, out, &resp)) return resp;
      if (!Take(ResolveLocks(r, batch, from, to, rl.start_ts(), rl.commit_ts(),
                             LimitOf(rl.limit(), options_)),
                &got, &resp)) {
        return resp;
      }
      out->set_resolved(got.resolved);
      SetResume(range, rl.end(), std::move(got.next), out);
      return resp;
    }
    case pb::TxnRequest::kCheckSecondaryLocks: {
      const pb::CheckSecondaryLocksRequest& c = req.check_secondary_locks();
      std::vector<std::string> keys(c.keys().begin(), c.keys().end());
      std::vector<SecondaryStatus> got;
      if (!Take(CheckSecondaryLocks(r, batch, keys, c.start_ts()), &got, &resp)) return resp;
      pb::CheckSecondaryLocksResponse* out = resp.mutable_check_secondary_locks();
      for (size_t i = 0; i < got.size(); ++i) {
        pb::SecondaryLock* one = out->add_keys();
        one->set_key(keys[i]);
        switch (got[i].state) {
          case SecondaryStatus::State::kLocked:
            one->set_state(pb::SecondaryLock::LOCKED);
            if (got[i].lock) *one->mutable_lock() = ToProto(*got[i].lock, keys[i]);
            break;
          case SecondaryStatus::State::kCommitted:
            one->set_state(pb::SecondaryLock::COMMITTED);
            one->set_commit_ts(got[i].commit_ts);
            break;
          case SecondaryStatus::State::kRolledBack:
            one->set_state(pb::SecondaryLock::ROLLED_BACK);
            break;
        }
      }
      return resp;
    }
    case pb::TxnRequest::kHeartBeat: {
      const pb::HeartBeatRequest& h = req.heart_beat();
      HeartBeatResult got;
      if (!Take(HeartBeat(r, batch, h.primary(), h.start_ts(), h.ttl_ms()), &got, &resp)) {
        return resp;
      }
      pb::HeartBeatResponse* out = resp.mutable_heart_beat();
      out->set_ttl_ms(got.ttl_ms);
      if (got.error) *out->mutable_error() = ToProto(*got.error);
      return resp;
    }
    case pb::TxnRequest::kGc: {
      const pb::GcRequest& g = req.gc();
      pb::GcResponse* out = resp.mutable_gc();
      // Reads below it are refused from now on, here too (before the heartbeat says so).
      RaiseSafePoint(g.safe_point());
      UserRange range;
      std::string from, to;
      if (!ClipStep(region, g.start(), g.end(), &range, &from, &to, out, &resp)) return resp;
      GcResult got;
      if (!Take(Gc(r, batch, EncodeKey(from), to.empty() ? std::string() : EncodeKey(to),
                   g.safe_point(), LimitOf(g.limit(), options_)),
                &got, &resp)) {
        return resp;
      }
      out->set_deleted(got.deleted);
      std::optional<std::string> next;
      if (got.next) {
        std::string key;
        if (!Take(DecodeKey(*got.next), &key, &resp)) return resp;
        next = std::move(key);
      }
      SetResume(range, g.end(), std::move(next), out);
      return resp;
    }
    default:
      resp.set_invalid("a transactional read is served, not applied");
      return resp;
  }
}

}  // namespace micedb::txn
