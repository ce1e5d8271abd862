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

pb::LockInfo ToProto(const Lock& lock, std::string_view key) {
  pb::LockInfo out;
  out.set_key(std::string(key));
  out.set_primary(lock.primary);
  out.set_start_ts(lock.start_ts);
  out.set_ttl_ms(lock.ttl_ms);
  out.set_txn_size(lock.txn_size);
  out.set_kind(KindOf(lock.kind));
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
  switch (req.cmd_case()) {
    case pb::TxnRequest::kGet:
      if (req.get().read_ts() == 0) return "get: read_ts is 0";
      return std::nullopt;
    case pb::TxnRequest::kBatchGet:
      if (req.batch_get().read_ts() == 0) return "batch_get: read_ts is 0";
      return too_many(req.batch_get().keys_size());
    case pb::TxnRequest::kScan:
      if (req.scan().read_ts() == 0) return "scan: read_ts is 0";
      if (req.scan().limit() > options_.max_scan_limit) {
        return fmt::format("scan: limit {} is above the most, {}", req.scan().limit(),
                           options_.max_scan_limit);
      }
      return std::nullopt;
    case pb::TxnRequest::kPrewrite: {
      const pb::PrewriteRequest& p = req.prewrite();
      if (p.start_ts() == 0) return "prewrite: start_ts is 0";
      if (p.mutations_size() == 0) return "prewrite: no mutations";
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
      if (r.limit() > options_.max_scan_limit) {
        return fmt::format("resolve_lock: limit {} is above the most, {}", r.limit(),
                           options_.max_scan_limit);
      }
      return too_many(r.keys_size());
    }
    case pb::TxnRequest::kHeartBeat:
      if (req.heart_beat().start_ts() == 0) return "heart_beat: start_ts is 0";
      return std::nullopt;
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
    case pb::TxnRequest::kScan:  // starts inside the region it was routed to
      add(req.scan().start());
      break;
    case pb::TxnRequest::CMD_NOT_SET:
      break;
  }
}

pb::TxnResponse RegionSteps::Read(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                                  kv::ReadView* view) const {
  pb::TxnResponse resp;
  if (auto why = Invalid(req)) {
    resp.set_invalid(*why);
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
      const UserRange range = UserRangeOfRegion(region);
      if (range.malformed) {
        resp.set_invalid("the region's bounds lie inside transactional keys");
        return resp;
      }
      std::string from, to;
      if (!Clip(range, s.start(), s.end(), &from, &to)) {
        out->set_done(!GoesOn(range, s.end()));
        if (!out->done()) out->set_resume_key(*range.end);
        return resp;
      }
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
      if (got.next) {
        out->set_resume_key(std::move(*got.next));
      } else if (GoesOn(range, s.end())) {
        out->set_resume_key(*range.end);
      } else {
        out->set_done(true);
      }
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
      pb::PrewriteResponse* out = resp.mutable_prewrite();
      for (const pb::Mutation& m : p.mutations()) {
        txn::Mutation one;
        one.op = m.op() == pb::Mutation::PUT      ? txn::Mutation::Op::kPut
                 : m.op() == pb::Mutation::DELETE ? txn::Mutation::Op::kDelete
                                                  : txn::Mutation::Op::kLock;
        one.key = m.key();
        one.value = m.value();
        if (!Take(Prewrite(r, batch, meta, one), &err, &resp)) return resp;
        if (err) *out->add_errors() = ToProto(*err);
      }
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
      if (!Take(CheckTxnStatus(r, batch, c.primary(), c.start_ts(), c.current_ts()), &st, &resp)) {
        return resp;
      }
      pb::CheckTxnStatusResponse* out = resp.mutable_check_txn_status();
      switch (st.state) {
        case TxnStatus::State::kAlive:
          out->set_state(pb::CheckTxnStatusResponse::ALIVE);
          out->set_ttl_left_ms(st.ttl_left_ms);
          if (st.lock) *out->mutable_lock() = ToProto(*st.lock, c.primary());
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
      const UserRange range = UserRangeOfRegion(region);
      if (range.malformed) {
        resp.set_invalid("the region's bounds lie inside transactional keys");
        return resp;
      }
      std::string from, to;
      if (!Clip(range, rl.start(), rl.end(), &from, &to)) {
        out->set_done(!GoesOn(range, rl.end()));
        if (!out->done()) out->set_resume_key(*range.end);
        return resp;
      }
      if (!Take(ResolveLocks(r, batch, from, to, rl.start_ts(), rl.commit_ts(),
                             LimitOf(rl.limit(), options_)),
                &got, &resp)) {
        return resp;
      }
      out->set_resolved(got.resolved);
      if (got.next) {
        out->set_resume_key(std::move(*got.next));
      } else if (GoesOn(range, rl.end())) {
        out->set_resume_key(*range.end);
      } else {
        out->set_done(true);
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
    default:
      resp.set_invalid("a transactional read is served, not applied");
      return resp;
  }
}

}  // namespace micedb::txn
