#include "kv/grpc/kv_api.h"

#include <limits>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace micedb::kv {

namespace {

Status Unexpected(const CommandResult& result) {
  return Status::Internal(fmt::format("unexpected result from the store (kind {})",
                                      static_cast<int>(result.kind_case())));
}

// A Get-shaped result: nil (absent) or bulk (the value).
Status ReadValue(const CommandResult& result, bool* found, std::string* value) {
  if (result.has_nil()) {
    *found = false;
    value->clear();
    return Status::OK();
  }
  if (result.kind_case() != CommandResult::kBulk) {
    return Unexpected(result);
  }
  *found = true;
  *value = result.bulk();
  return Status::OK();
}

Status CheckBatchSize(size_t n, size_t max, std::string_view what) {
  if (n <= max) {
    return Status::OK();
  }
  return Status::InvalidArgument(fmt::format("too many {}: {} (at most {})", what, n, max));
}

}  // namespace

Status KvErrorStatus(const KvError& error) {
  switch (error.code()) {
    case KvError::NOT_INTEGER:
    case KvError::INTEGER_OVERFLOW:
    case KvError::VALUE_TOO_BIG:
    case KvError::INVALID_ARGUMENT:
      return Status::InvalidArgument(error.message());
    case KvError::RESULT_TOO_LARGE:
      return Status::ResourceExhausted(error.message());
    case KvError::RESULT_NOT_KEPT:
      return Status::Aborted(error.message());
    case KvError::CROSS_REGION:
      return Status::InvalidArgument(error.message());
    case KvError::UNAVAILABLE:
      return Status::Unavailable(error.message());
    case KvError::OUTCOME_UNKNOWN:
      return Status::TimedOut(error.message());
    case KvError::NO_SPACE:
      return Status::ResourceExhausted(error.message());
    default:
      return Status::Internal(error.message());
  }
}

KvApi::KvApi(KvBackend* backend, KvApiOptions options) : backend_(backend), options_(options) {}

int64_t KvApi::NowMs() const {
  const Clock* clock = options_.clock ? options_.clock : SystemClock::Get();
  return clock->NowWallMillis();
}

Status KvApi::CheckKey(std::string_view key, std::string_view what) const {
  if (key.empty()) {
    return Status::InvalidArgument(fmt::format("{} is empty", what));
  }
  if (key.size() > options_.max_key_bytes) {
    return Status::InvalidArgument(fmt::format("{} is {} bytes, longer than the limit of {}", what,
                                               key.size(), options_.max_key_bytes));
  }
  return Status::OK();
}

Status KvApi::CheckValue(std::string_view value, std::string_view what) const {
  if (value.size() > options_.max_value_bytes) {
    return Status::InvalidArgument(fmt::format("{} is {} bytes, longer than the limit of {}", what,
                                               value.size(), options_.max_value_bytes));
  }
  return Status::OK();
}

Result<ReadMode> KvApi::ReadModeOf(v1::ReadConsistency c) {
  switch (c) {
    case v1::LINEARIZABLE:
      return ReadMode::kLinearizable;
    case v1::LOCAL_STALE:
      return ReadMode::kLocalStale;
    default:
      return Status::InvalidArgument(
          fmt::format("unknown read consistency {}", static_cast<int>(c)));
  }
}

void KvApi::Run(Command cmd, ReadMode mode, std::function<Status(const CommandResult&)> on_result,
                Done done) const {
  if (cmd.now_ms() == 0) {
    cmd.set_now_ms(NowMs());
  }
  backend_->Execute(
      std::move(cmd), mode,
      [on_result = std::move(on_result), done = std::move(done)](Result<CommandResult> r) {
        if (!r.ok()) {
          return done(r.status());
        }
        // A command-level refusal: with the checks above it is normally about the request's
        // contents (for example a value over the store's limit).
        if (r->has_error()) {
          return done(KvErrorStatus(r->error()));
        }
        done(on_result(*r));
      });
}

void KvApi::Get(const v1::GetRequest& req, v1::GetResponse* resp, Done done) const {
  Status st = CheckKey(req.key(), "key");
  if (!st.ok()) {
    return done(std::move(st));
  }
  Result<ReadMode> mode = ReadModeOf(req.consistency());
  if (!mode.ok()) {
    return done(mode.status());
  }
  Command cmd;
  cmd.mutable_get()->set_key(req.key());
  Run(
      std::move(cmd), *mode,
      [resp](const CommandResult& r) {
        bool found = false;
        Status read = ReadValue(r, &found, resp->mutable_value());
        resp->set_found(found);
        return read;
      },
      std::move(done));
}

void KvApi::Put(const v1::PutRequest& req, v1::PutResponse* resp, Done done) const {
  Status st = CheckKey(req.key(), "key");
  if (st.ok()) {
    st = CheckValue(req.value(), "value");
  }
  if (!st.ok()) {
    return done(std::move(st));
  }
  if (req.ttl_ms() < 0) {
    return done(Status::InvalidArgument(fmt::format("ttl_ms is negative: {}", req.ttl_ms())));
  }
  const int64_t now = NowMs();
  if (req.ttl_ms() > std::numeric_limits<int64_t>::max() - now) {
    return done(Status::InvalidArgument(fmt::format("ttl_ms is too large: {}", req.ttl_ms())));
  }
  Command cmd;
  cmd.set_now_ms(now);  // the expiry and the write's own time agree
  Set* set = cmd.mutable_set();
  set->set_key(req.key());
  set->set_value(req.value());
  if (req.ttl_ms() > 0) {
    set->set_expire_at_ms(now + req.ttl_ms());
  }
  Run(
      std::move(cmd), ReadMode::kLinearizable,
      [](const CommandResult& r) { return r.has_ok() ? Status::OK() : Unexpected(r); },
      std::move(done));
}

void KvApi::Delete(const v1::DeleteRequest& req, v1::DeleteResponse* resp, Done done) const {
  Status st = CheckBatchSize(req.keys_size(), options_.max_batch_keys, "keys");
  for (int i = 0; st.ok() && i < req.keys_size(); ++i) {
    st = CheckKey(req.keys(i), fmt::format("keys[{}]", i));
  }
  if (!st.ok()) {
    return done(std::move(st));
  }
  if (req.keys_size() == 0) {
    resp->set_deleted(0);
    return done(Status::OK());
  }
  Command cmd;
  *cmd.mutable_del()->mutable_keys() = req.keys();
  Run(
      std::move(cmd), ReadMode::kLinearizable,
      [resp](const CommandResult& r) {
        if (r.kind_case() != CommandResult::kInteger || r.integer() < 0) {
          return Unexpected(r);
        }
        resp->set_deleted(static_cast<uint64_t>(r.integer()));
        return Status::OK();
      },
      std::move(done));
}

void KvApi::BatchGet(const v1::BatchGetRequest& req, v1::BatchGetResponse* resp, Done done) const {
  Status st = CheckBatchSize(req.keys_size(), options_.max_batch_keys, "keys");
  for (int i = 0; st.ok() && i < req.keys_size(); ++i) {
    st = CheckKey(req.keys(i), fmt::format("keys[{}]", i));
  }
  if (!st.ok()) {
    return done(std::move(st));
  }
  Result<ReadMode> mode = ReadModeOf(req.consistency());
  if (!mode.ok()) {
    return done(mode.status());
  }
  if (req.keys_size() == 0) {
    return done(Status::OK());
  }
  Command cmd;
  *cmd.mutable_mget()->mutable_keys() = req.keys();
  Run(
      std::move(cmd), *mode,
      [&req, resp](const CommandResult& r) {
        if (!r.has_array() || r.array().items_size() != req.keys_size()) {
          return Unexpected(r);
        }
        for (int i = 0; i < req.keys_size(); ++i) {
          v1::BatchGetResponse::Item* item = resp->add_items();
          item->set_key(req.keys(i));
          bool found = false;
          MICEDB_RETURN_IF_ERROR(ReadValue(r.array().items(i), &found, item->mutable_value()));
          item->set_found(found);
        }
        return Status::OK();
      },
      std::move(done));
}

void KvApi::BatchPut(const v1::BatchPutRequest& req, v1::BatchPutResponse* resp, Done done) const {
  Status st = CheckBatchSize(req.pairs_size(), options_.max_batch_keys, "pairs");
  for (int i = 0; st.ok() && i < req.pairs_size(); ++i) {
    st = CheckKey(req.pairs(i).key(), fmt::format("pairs[{}].key", i));
    if (st.ok()) {
      st = CheckValue(req.pairs(i).value(), fmt::format("pairs[{}].value", i));
    }
  }
  if (!st.ok()) {
    return done(std::move(st));
  }
  if (req.pairs_size() == 0) {
    return done(Status::OK());
  }
  Command cmd;
  MSet* mset = cmd.mutable_mset();
  for (const v1::KeyValue& pair : req.pairs()) {
    KeyValue* kv = mset->add_pairs();
    kv->set_key(pair.key());
    kv->set_value(pair.value());
  }
  Run(
      std::move(cmd), ReadMode::kLinearizable,
      [](const CommandResult& r) { return r.has_ok() ? Status::OK() : Unexpected(r); },
      std::move(done));
}

void KvApi::CompareAndSwap(const v1::CompareAndSwapRequest& req, v1::CompareAndSwapResponse* resp,
                           Done done) const {
  Status st = CheckKey(req.key(), "key");
  if (st.ok() && req.expect_case() == v1::CompareAndSwapRequest::EXPECT_NOT_SET) {
    st = Status::InvalidArgument("set either expected_value or expect_absent");
  }
  if (st.ok() && req.has_expect_absent() && !req.expect_absent()) {
    st = Status::InvalidArgument("expect_absent must be true when set");
  }
  if (st.ok()) {
    st = CheckValue(req.expected_value(), "expected_value");
  }
  if (st.ok()) {
    st = CheckValue(req.new_value(), "new_value");
  }
  if (!st.ok()) {
    return done(std::move(st));
  }
  Command cmd;
  kv::CompareAndSwap* cas = cmd.mutable_compare_and_swap();
  cas->set_key(req.key());
  if (req.has_expect_absent()) {
    cas->set_expect_absent(true);
  } else {
    cas->set_expected_value(req.expected_value());
  }
  cas->set_new_value(req.new_value());
  cas->set_delete_key(req.delete_key());
  Run(
      std::move(cmd), ReadMode::kLinearizable,
      [resp](const CommandResult& r) {
        // [1 or 0 (swapped), value before (bulk or nil)], docs/kv-format.md.
        if (!r.has_array() || r.array().items_size() != 2 ||
            r.array().items(0).kind_case() != CommandResult::kInteger) {
          return Unexpected(r);
        }
        resp->set_succeeded(r.array().items(0).integer() == 1);
        bool found = false;
        MICEDB_RETURN_IF_ERROR(
            ReadValue(r.array().items(1), &found, resp->mutable_current_value()));
        resp->set_found(found);
        return Status::OK();
      },
      std::move(done));
}

}  // namespace micedb::kv
