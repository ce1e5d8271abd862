#include "kv/grpc/client.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "common/clock.h"
#include "kv/grpc/status_codes.h"

namespace micedb::kv {

namespace {

using WallTime = std::chrono::system_clock::time_point;

WallTime Now() {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(SystemClock::Get()->NowWall()));
}

v1::ReadConsistency ConsistencyOf(ReadMode mode) {
  return mode == ReadMode::kLocalStale ? v1::LOCAL_STALE : v1::LINEARIZABLE;
}

std::optional<std::string> ValueIf(bool found, const std::string& value) {
  return found ? std::optional<std::string>(value) : std::nullopt;
}

}  // namespace

KvClient::KvClient(const std::string& addr, KvClientOptions options) : options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  stub_ = v1::Kv::NewStub(grpc::CreateCustomChannel(
      addr, options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials(),
      args));
}

Status KvClient::Call(bool idempotent,
                      const std::function<grpc::Status(grpc::ClientContext*)>& attempt) {
  const WallTime deadline = Now() + options_.timeout;
  std::chrono::milliseconds backoff = options_.retry_backoff;
  for (int n = 1;; ++n) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status st = attempt(&ctx);
    if (st.ok()) {
      return Status::OK();
    }
    bool again = st.error_code() == grpc::StatusCode::UNAVAILABLE && n < options_.max_attempts;
    if (again && !idempotent) {
      again = ctx.GetServerTrailingMetadata().count(kNotAppliedMetadata) > 0;
    }
    if (!again || Now() + backoff >= deadline) {
      return FromGrpcStatus(st);
    }
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

Result<std::optional<std::string>> KvClient::Get(std::string_view key, ReadMode mode) {
  v1::GetRequest req;
  req.set_key(std::string(key));
  req.set_consistency(ConsistencyOf(mode));
  v1::GetResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->Get(ctx, req, &resp); }));
  return ValueIf(resp.found(), resp.value());
}

Status KvClient::Put(std::string_view key, std::string_view value, int64_t ttl_ms) {
  v1::PutRequest req;
  req.set_key(std::string(key));
  req.set_value(std::string(value));
  req.set_ttl_ms(ttl_ms);
  v1::PutResponse resp;
  return Call(true, [&](grpc::ClientContext* ctx) { return stub_->Put(ctx, req, &resp); });
}

Result<uint64_t> KvClient::Delete(const std::vector<std::string>& keys) {
  v1::DeleteRequest req;
  for (const std::string& k : keys) {
    req.add_keys(k);
  }
  v1::DeleteResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->Delete(ctx, req, &resp); }));
  return resp.deleted();
}

Status KvClient::Scan(const KvScanOptions& options, const std::function<void(KvPair)>& visit) {
  v1::ScanRequest req;
  req.set_start(options.start);
  req.set_end(options.end);
  req.set_limit(options.limit);
  req.set_keys_only(options.keys_only);
  req.set_consistency(ConsistencyOf(options.mode));
  uint64_t seen = 0;
  return Call(true, [&](grpc::ClientContext* ctx) {
    // A retry picks up right after the last key delivered: key + '\0' is the next key.
    if (options.limit != 0 && seen >= options.limit) {
      return grpc::Status::OK;
    }
    if (!req.end().empty() && req.start() >= req.end()) {
      return grpc::Status::OK;
    }
    if (options.limit != 0) {
      req.set_limit(options.limit - seen);
    }
    std::unique_ptr<grpc::ClientReader<v1::ScanResponse>> reader = stub_->Scan(ctx, req);
    v1::ScanResponse msg;
    while (reader->Read(&msg)) {
      for (v1::KeyValue& pair : *msg.mutable_pairs()) {
        req.set_start(pair.key() + '\0');
        ++seen;
        visit(KvPair{std::move(*pair.mutable_key()), std::move(*pair.mutable_value())});
      }
    }
    return reader->Finish();
  });
}

Result<std::vector<KvPair>> KvClient::Scan(const KvScanOptions& options) {
  std::vector<KvPair> pairs;
  MICEDB_RETURN_IF_ERROR(Scan(options, [&pairs](KvPair p) { pairs.push_back(std::move(p)); }));
  return pairs;
}

Result<std::vector<std::optional<std::string>>> KvClient::BatchGet(
    const std::vector<std::string>& keys, ReadMode mode) {
  v1::BatchGetRequest req;
  for (const std::string& k : keys) {
    req.add_keys(k);
  }
  req.set_consistency(ConsistencyOf(mode));
  v1::BatchGetResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->BatchGet(ctx, req, &resp); }));
  if (static_cast<size_t>(resp.items_size()) != keys.size()) {
    return Status::Internal("BatchGet answered a different number of keys");
  }
  std::vector<std::optional<std::string>> values;
  values.reserve(keys.size());
  for (const auto& item : resp.items()) {
    values.push_back(ValueIf(item.found(), item.value()));
  }
  return values;
}

Status KvClient::BatchPut(const std::vector<KvPair>& pairs) {
  v1::BatchPutRequest req;
  for (const KvPair& p : pairs) {
    v1::KeyValue* kv = req.add_pairs();
    kv->set_key(p.key);
    kv->set_value(p.value);
  }
  v1::BatchPutResponse resp;
  return Call(true, [&](grpc::ClientContext* ctx) { return stub_->BatchPut(ctx, req, &resp); });
}

Result<KvCasResult> KvClient::CompareAndSwap(const KvCasOp& op) {
  v1::CompareAndSwapRequest req;
  req.set_key(op.key);
  if (op.expected.has_value()) {
    req.set_expected_value(*op.expected);
  } else {
    req.set_expect_absent(true);
  }
  if (op.new_value.has_value()) {
    req.set_new_value(*op.new_value);
  } else {
    req.set_delete_key(true);
  }
  v1::CompareAndSwapResponse resp;
  MICEDB_RETURN_IF_ERROR(Call(
      false, [&](grpc::ClientContext* ctx) { return stub_->CompareAndSwap(ctx, req, &resp); }));
  return KvCasResult{resp.succeeded(), ValueIf(resp.found(), resp.current_value())};
}

}  // namespace micedb::kv
