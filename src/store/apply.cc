#include "store/apply.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/memcomparable.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/region_peer.h"

namespace micedb::store {

namespace {

// Results of recent requests, for at-most-once writes: DedupKey records in Cf::kDedup, holding
// the serialized kv.CommandResult (docs/kv-format.md). Kept for ten minutes of the leaders'
// clocks (propose_ts_ms); SweepDedupRecords removes them after that.

bool InRange(const RegionDescriptor& region, std::string_view key) {
  return key >= region.start_key() && (region.end_key().empty() || key < region.end_key());
}

}  // namespace

std::string EncodeEntry(region::RegionRequest req) {
  req.set_format(region::FORMAT_V1);
  return req.SerializeAsString();
}

EntryFormat DecodeEntry(std::string_view data, region::RegionRequest* req) {
  if (req->ParseFromArray(data.data(), static_cast<int>(data.size())) &&
      req->format() == region::FORMAT_V1) {
    return EntryFormat::kEnvelope;
  }
  req->Clear();
  kv::Command* cmd = req->mutable_kv();
  if (!cmd->ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    req->Clear();
    return EntryFormat::kBad;
  }
  req->mutable_header()->set_request_id(cmd->request_id());
  req->mutable_header()->set_request_ts_ms(cmd->request_ts_ms());
  return EntryFormat::kLegacyCommand;
}

std::optional<region::RegionResponse> StampProposal(region::RegionRequest* req,
                                                    int64_t leader_wall_ms) {
  region::RequestHeader* h = req->mutable_header();
  h->set_propose_ts_ms(leader_wall_ms);
  if (h->request_id() == 0) return std::nullopt;
  const int64_t skew = h->request_ts_ms() - leader_wall_ms;
  if (skew > kDedupWindowMs / 2 || skew < -kDedupWindowMs / 2) {
    return InvalidRequestResponse(fmt::format(
        "the gateway's clock is {} ms off the leader's; at-most-once writes need the nodes' "
        "clocks within {} ms of each other (check NTP)",
        skew, kDedupWindowMs / 2));
  }
  return std::nullopt;
}

void RequestEngineKeys(const StateMachine& sm, const region::RegionRequest& req,
                       std::vector<std::string>* keys) {
  if (req.has_kv()) sm.EngineKeys(req.kv(), keys);
  if (req.has_txn()) sm.TxnEngineKeys(req.txn(), keys);
}

std::optional<region::RegionResponse> CheckRequest(const RegionDescriptor& region,
                                                   const region::RegionRequest& req,
                                                   const StateMachine& sm, std::string* anchor) {
  const region::RequestHeader& h = req.header();
  if (h.region_id() != region.id()) return RegionNotFoundResponse(h.region_id());
  if (req.body_case() == region::RegionRequest::BODY_NOT_SET) {
    return InvalidRequestResponse("the request has no body");
  }
  bool epoch_ok = h.epoch().version() == region.epoch().version();
  if (req.body_case() == region::RegionRequest::kAdmin) {
    epoch_ok &= h.epoch().conf_ver() == region.epoch().conf_ver();
  }
  if (!epoch_ok) return EpochNotMatchResponse(region);
  if (region.has_merging() &&
      !(req.body_case() == region::RegionRequest::kAdmin && req.admin().has_rollback_merge())) {
    // Frozen (docs/sharding.md §2): its data may be the target's already, so it serves no read
    // either. Soon the region is gone (the router finds the target) or thawed.
    return ServerBusyResponse(fmt::format("region {} is merging into region {}", region.id(),
                                          region.merging().target().id()),
                              100);
  }
  if (req.body_case() == region::RegionRequest::kKv ||
      req.body_case() == region::RegionRequest::kTxn) {
    std::vector<std::string> keys;
    RequestEngineKeys(sm, req, &keys);
    for (const std::string& key : keys) {
      if (!InRange(region, key)) return KeyNotInRegionResponse(key, region);
    }
    if (anchor != nullptr && keys.empty()) {
      *anchor = region.start_key();
    } else if (anchor != nullptr) {
      *anchor = std::move(keys.front());
    }
  }
  return std::nullopt;
}

bool IsTxnRead(const txn::pb::TxnRequest& req) {
  return req.has_get() || req.has_batch_get() || req.has_scan() || req.has_scan_lock();
}

region::RegionResponse ServeRead(StateMachine* sm, const RegionDescriptor& region,
                                 storage::Engine* engine, const storage::Snapshot* snapshot,
                                 const region::RegionRequest& req) {
  if (auto refused = CheckRequest(region, req, *sm)) return std::move(*refused);
  region::RegionResponse resp;
  switch (req.body_case()) {
    case region::RegionRequest::kKv:
      *resp.mutable_kv() = sm->ReadKv(region, engine, snapshot, req.kv());
      return resp;
    case region::RegionRequest::kMeta:
      *resp.mutable_meta() = sm->ReadMeta(region, engine, snapshot, req.meta());
      return resp;
    case region::RegionRequest::kTxn:
      if (!IsTxnRead(req.txn())) {
        return InvalidRequestResponse("this transactional step is a write, not a read");
      }
      *resp.mutable_txn() = sm->ReadTxn(region, engine, snapshot, req.txn());
      if (const uint64_t wait = resp.txn().retry_after_ms(); wait != 0) {
        // A one-phase commit of a key read here is on its way through raft (nothing was read).
        return ServerBusyResponse("a key read here is being committed; retry", wait);
      }
      return resp;
    default:
      return InvalidRequestResponse("only kv, txn and meta requests can be read");
  }
}

Applier::Applier(StateMachine* sm, const RegionDescriptor& region, storage::Engine* engine,
                 storage::WriteBatch* wb)
    : sm_(sm), region_(region), engine_(engine), wb_(wb) {}

region::RegionResponse Applier::Apply(std::string_view data, LogIndex index, bool answering,
                                      region::AdminRequest* admin) {
  region::RegionRequest req;
  const EntryFormat format = DecodeEntry(data, &req);
  if (format == EntryFormat::kBad) {
    GetLogger("store")->error("region {}: entry {} is not a request; skipped", region_.id(),
                              index.value());
    return InvalidRequestResponse("the log entry is not a request");
  }
  std::string anchor;  // where the request's dedup record goes (DedupKey)
  if (format == EntryFormat::kEnvelope) {
    // Checked again here although the leader checked when proposing: a split or merge may
    // have been applied in between, and every replica must refuse the same entries.
    if (auto refused = CheckRequest(region_, req, *sm_, &anchor)) return std::move(*refused);
  } else {
    anchor = region_.start_key();
  }
  region::RegionResponse resp;
  switch (req.body_case()) {
    case region::RegionRequest::kKv:
      break;
    case region::RegionRequest::kAdmin:
      // Passed the checks (version and conf_ver): the store applies it (a split or a merge).
      if (admin == nullptr ||
          !(req.admin().has_split() || req.admin().has_prepare_merge() ||
            req.admin().has_commit_merge() || req.admin().has_rollback_merge() ||
            req.admin().has_refuse_merge())) {
        return InvalidRequestResponse("this admin request cannot be applied as a log entry");
      }
      *admin = std::move(*req.mutable_admin());
      return resp;
    case region::RegionRequest::kTxn:
      // Every step is idempotent (docs/transactions.md §3): no dedup record.
      if (IsTxnRead(req.txn())) return InvalidRequestResponse("a transactional read is no entry");
      if (!round_) round_ = sm_->BeginRound(region_, engine_, wb_);
      *resp.mutable_txn() = round_->ApplyTxn(req.txn(), index);
      return resp;
    case region::RegionRequest::kMeta:
      // Coordinator commands are idempotent or guarded (coordinator.proto), so they need no
      // dedup record.
      if (!round_) round_ = sm_->BeginRound(region_, engine_, wb_);
      *resp.mutable_meta() = round_->ApplyMeta(req.meta(), index);
      return resp;
    default:
      return InvalidRequestResponse("this body cannot be applied as a log entry");
  }
  const region::RequestHeader& h = req.header();
  horizon_ms_ = std::max(horizon_ms_, h.propose_ts_ms());
  if (h.request_id() == 0) {
    *resp.mutable_kv() = RunKv(req.kv(), index, answering);
    return resp;
  }
  // At most once: a request id seen before gets the result it got then.
  std::string key = DedupKey(anchor, h.request_ts_ms(), h.request_id());
  if (auto it = written_.find(key); it != written_.end()) {
    resp.mutable_kv()->ParseFromString(it->second);
    return resp;
  }
  auto seen = engine_->Get(storage::Cf::kDedup, key);
  if (seen.ok()) {
    resp.mutable_kv()->ParseFromString(*seen);
    return resp;
  }
  if (seen.status().code() != StatusCode::kNotFound) {
    // A replica that cannot read its own engine must stop: going on could make its state
    // differ from the other replicas'.
    StoreFatal("apply: dedup lookup failed: " + seen.status().ToString());
  }
  *resp.mutable_kv() = RunKv(req.kv(), index, answering);
  // The record keeps what a retry needs, not the whole reply (a txn's reads can be large).
  std::string encoded = sm_->ForRetry(req.kv(), resp.kv()).SerializeAsString();
  wb_->Put(storage::Cf::kDedup, key, encoded);
  written_.emplace(std::move(key), std::move(encoded));
  oldest_written_ms_ = std::min(oldest_written_ms_, h.request_ts_ms());
  return resp;
}

kv::CommandResult Applier::RunKv(const kv::Command& cmd, LogIndex index, bool answering) {
  if (!round_) round_ = sm_->BeginRound(region_, engine_, wb_);
  return round_->ApplyKv(cmd, index, answering);
}

SweepResult SweepDedupRecords(storage::Engine* engine, const RegionDescriptor& region,
                              std::string_view cursor, int64_t horizon_ms, size_t budget,
                              storage::WriteBatch* wb) {
  SweepResult out;
  if (horizon_ms <= kDedupWindowMs) return out;  // nothing can be old enough yet
  const int64_t cutoff = horizon_ms - kDedupWindowMs;
  const CfBounds bounds = RegionCfBounds(storage::Cf::kDedup, region.start_key(), region.end_key());
  storage::ReadOptions ro;
  ro.lower_bound = bounds.begin;
  ro.upper_bound = bounds.end;
  auto it = engine->NewIterator(storage::Cf::kDedup, ro);
  if (cursor.empty() || cursor < bounds.begin) {
    it->SeekToFirst();
  } else {
    it->Seek(cursor);
  }
  for (; it->Valid() && out.scanned < budget; it->Next()) {
    out.scanned++;
    int64_t ts = 0;
    // A key that is not a record (none should be) is left alone.
    if (!DecodeDedupKeyTime(it->key(), &ts)) continue;
    if (ts < cutoff) {
      wb->Delete(storage::Cf::kDedup, it->key());
      out.deleted++;
    } else {
      out.oldest_kept_ms = std::min(out.oldest_kept_ms, ts);
    }
  }
  if (!it->status().ok()) {
    out.status = it->status();
    return out;
  }
  // Where the next sweep starts: past the last key seen, or the start again at the end.
  if (it->Valid()) out.next_cursor = std::string(it->key());
  return out;
}

}  // namespace micedb::store
