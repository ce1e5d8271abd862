#include "txn/grpc/client.h"

#include <thread>

#include <fmt/format.h>

#include "common/clock.h"
#include "kv/grpc/status_codes.h"

namespace micedb::txn {

namespace {

using WallTime = std::chrono::system_clock::time_point;

WallTime Now() {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(SystemClock::Get()->NowWall()));
}

TxnGrpcClient::Pairs PairsOf(const google::protobuf::RepeatedPtrField<v1::KvPair>& in) {
  TxnGrpcClient::Pairs out;
  out.reserve(static_cast<size_t>(in.size()));
  for (const auto& p : in) out.emplace_back(p.key(), p.value());
  return out;
}

}  // namespace

TxnGrpcClient::TxnGrpcClient(const std::string& addr, TxnGrpcClientOptions options)
    : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  stub_ = v1::Txn::NewStub(grpc::CreateCustomChannel(
      addr, options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials(),
      args));
}

Status TxnGrpcClient::Call(bool retry,
                           const std::function<grpc::Status(grpc::ClientContext*)>& attempt) {
  const WallTime deadline = Now() + options_.timeout;
  auto backoff = std::chrono::milliseconds(20);
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status st = attempt(&ctx);
    if (st.ok()) return Status::OK();
    if (!retry || st.error_code() != grpc::StatusCode::UNAVAILABLE || Now() + backoff >= deadline) {
      return kv::FromGrpcStatus(st);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

Result<TxnGrpcClient::Handle> TxnGrpcClient::Begin(uint64_t read_ts) {
  v1::BeginRequest req;
  req.set_read_ts(read_ts);
  v1::BeginResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->Begin(ctx, req, &resp); }));
  return Handle{resp.txn_id(), resp.start_ts()};
}

Result<std::optional<std::string>> TxnGrpcClient::Get(uint64_t id, const std::string& key) {
  v1::GetRequest req;
  req.set_txn_id(id);
  req.set_key(key);
  v1::GetResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->Get(ctx, req, &resp); }));
  if (!resp.found()) return std::optional<std::string>();
  return std::optional<std::string>(resp.value());
}

Result<TxnGrpcClient::Pairs> TxnGrpcClient::BatchGet(uint64_t id,
                                                     const std::vector<std::string>& keys) {
  v1::BatchGetRequest req;
  req.set_txn_id(id);
  for (const auto& k : keys) req.add_keys(k);
  v1::BatchGetResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->BatchGet(ctx, req, &resp); }));
  return PairsOf(resp.pairs());
}

Result<TxnGrpcClient::Pairs> TxnGrpcClient::Scan(uint64_t id, const std::string& start,
                                                 const std::string& end, uint32_t limit) {
  v1::ScanRequest req;
  req.set_txn_id(id);
  req.set_start(start);
  req.set_end(end);
  req.set_limit(limit);
  v1::ScanResponse resp;
  MICEDB_RETURN_IF_ERROR(
      Call(true, [&](grpc::ClientContext* ctx) { return stub_->Scan(ctx, req, &resp); }));
  return PairsOf(resp.pairs());
}

Status TxnGrpcClient::Put(uint64_t id, const std::string& key, const std::string& value) {
  v1::PutRequest req;
  req.set_txn_id(id);
  req.set_key(key);
  req.set_value(value);
  v1::PutResponse resp;
  return Call(true, [&](grpc::ClientContext* ctx) { return stub_->Put(ctx, req, &resp); });
}

Status TxnGrpcClient::Delete(uint64_t id, const std::string& key) {
  v1::DeleteRequest req;
  req.set_txn_id(id);
  req.set_key(key);
  v1::DeleteResponse resp;
  return Call(true, [&](grpc::ClientContext* ctx) { return stub_->Delete(ctx, req, &resp); });
}

Result<uint64_t> TxnGrpcClient::Commit(uint64_t id) {
  v1::CommitRequest req;
  req.set_txn_id(id);
  return SendCommit(req);
}

Result<uint64_t> TxnGrpcClient::Write(const std::vector<Mutation>& mutations) {
  if (mutations.empty()) return Status::InvalidArgument("a one-shot write needs a mutation");
  v1::CommitRequest req;
  for (const Mutation& m : mutations) {
    v1::Mutation* out = req.add_mutations();
    out->set_op(m.op == Mutation::Op::kPut ? v1::Mutation::PUT : v1::Mutation::DELETE);
    out->set_key(m.key);
    if (m.op == Mutation::Op::kPut) out->set_value(m.value);
  }
  return SendCommit(req);
}

Result<uint64_t> TxnGrpcClient::SendCommit(const v1::CommitRequest& req) {
  v1::CommitResponse resp;
  bool not_applied = false;
  grpc::StatusCode code = grpc::StatusCode::OK;
  Status st = Call(false, [&](grpc::ClientContext* ctx) {
    grpc::Status s = stub_->Commit(ctx, req, &resp);
    not_applied = ctx->GetServerTrailingMetadata().count(kv::kNotAppliedMetadata) > 0;
    code = s.error_code();
    return s;
  });
  // Only what the node said for sure is definite: committed (OK), refused (ABORTED,
  // INVALID_ARGUMENT, NOT_FOUND: nothing was sent) or not applied (UNAVAILABLE with the
  // trailer). Anything else -- a broken connection, a call cancelled as the node stopped --
  // may have come after the primary's commit went out.
  const bool definite = code == grpc::StatusCode::OK || code == grpc::StatusCode::ABORTED ||
                        code == grpc::StatusCode::INVALID_ARGUMENT ||
                        code == grpc::StatusCode::NOT_FOUND ||
                        (code == grpc::StatusCode::UNAVAILABLE && not_applied);
  if (!definite) {
    return Status::TimedOut(fmt::format(
        "no clear answer from the node during commit ({}); the outcome is unknown", st.message()));
  }
  MICEDB_RETURN_IF_ERROR(st);
  return resp.commit_ts();
}

Status TxnGrpcClient::Rollback(uint64_t id) {
  v1::RollbackRequest req;
  req.set_txn_id(id);
  v1::RollbackResponse resp;
  return Call(false, [&](grpc::ClientContext* ctx) { return stub_->Rollback(ctx, req, &resp); });
}

}  // namespace micedb::txn
