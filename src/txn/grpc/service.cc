#include "txn/grpc/service.h"

#include <fmt/format.h>

#include "common/random.h"
#include "kv/grpc/status_codes.h"

namespace micedb::txn {

namespace {

grpc::Status Invalid(std::string msg) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(msg));
}

// Finishes a call that answers key-value pairs (BatchGet, Scan).
template <typename Resp>
std::function<void(Result<Txn::Pairs>)> PairsReply(grpc::ServerUnaryReactor* reactor, Resp* resp) {
  return [reactor, resp](Result<Txn::Pairs> r) {
    if (!r.ok()) return reactor->Finish(kv::ToGrpcStatus(r.status()));
    for (auto& [k, v] : *r) {
      v1::KvPair* p = resp->add_pairs();
      p->set_key(std::move(k));
      p->set_value(std::move(v));
    }
    reactor->Finish(grpc::Status::OK);
  };
}

// Finishes a Commit with the transaction's outcome.
std::function<void(Result<uint64_t>)> CommitReply(grpc::CallbackServerContext* ctx,
                                                  grpc::ServerUnaryReactor* reactor,
                                                  v1::CommitResponse* resp) {
  return [ctx, reactor, resp](Result<uint64_t> r) {
    if (!r.ok()) {
      // Said by the cluster, not a broken connection: the transaction did not commit.
      if (r.status().code() == StatusCode::kUnavailable) {
        ctx->AddTrailingMetadata(kv::kNotAppliedMetadata, "1");
      }
      return reactor->Finish(kv::ToGrpcStatus(r.status()));
    }
    resp->set_commit_ts(*r);
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

TxnGrpcService::TxnGrpcService(TxnClient* client, const Clock* clock, TxnServiceOptions options)
    : client_(client), clock_(clock), options_(options) {
  // Ids differ across nodes and restarts, so an id from elsewhere is NOT_FOUND, not a
  // stranger's transaction.
  next_id_ = Random(static_cast<uint64_t>(clock->NowMonotonic().count()) ^
                    static_cast<uint64_t>(clock->NowWallMicros()))
                 .Next64() |
             1;
}

int64_t TxnGrpcService::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->NowMonotonic()).count();
}

void TxnGrpcService::DropIdle() {
  const int64_t now = NowMs();
  last_sweep_ms_ = now;
  std::erase_if(open_, [&](const auto& kv) {
    if (now - kv.second.last_used_ms <= options_.idle_timeout_ms) return false;
    total_bytes_ -= kv.second.bytes;
    return true;
  });
}

Result<uint64_t> TxnGrpcService::Open(std::shared_ptr<Txn> txn) {
  std::lock_guard<std::mutex> l(mu_);
  // Idle transactions go at least once a second (each Begin looks), and at once when full.
  if (open_.size() >= options_.max_open || NowMs() - last_sweep_ms_ >= 1000) DropIdle();
  if (open_.size() >= options_.max_open) {
    return Status::ResourceExhausted(fmt::format(
        "{} transactions are open on this node (the most, --txn-max-open); commit or roll back "
        "some first",
        open_.size()));
  }
  const uint64_t id = next_id_++;
  open_[id] = Session{std::move(txn), NowMs(), 0};
  return id;
}

Result<std::shared_ptr<Txn>> TxnGrpcService::Find(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = open_.find(id);
  if (it == open_.end() || NowMs() - it->second.last_used_ms > options_.idle_timeout_ms) {
    if (it != open_.end()) {
      total_bytes_ -= it->second.bytes;
      open_.erase(it);
    }
    return Status::NotFound(fmt::format(
        "no open transaction {} on this node (committed, rolled back, idle for more than {} ms, "
        "or begun on another node)",
        id, options_.idle_timeout_ms));
  }
  it->second.last_used_ms = NowMs();
  return it->second.txn;
}

Status TxnGrpcService::Charge(uint64_t id, uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = open_.find(id);
  if (it == open_.end()) return Status::NotFound(fmt::format("no open transaction {}", id));
  if (it->second.bytes + bytes > options_.max_txn_bytes) {
    return Status::ResourceExhausted(
        fmt::format("transaction {} would buffer more than {} bytes of writes (the most for one "
                    "transaction)",
                    id, options_.max_txn_bytes));
  }
  if (total_bytes_ + bytes > options_.max_total_bytes) {
    return Status::ResourceExhausted(fmt::format(
        "the open transactions on this node buffer {} bytes of writes (the most, {}); commit "
        "or roll back some first",
        total_bytes_, options_.max_total_bytes));
  }
  it->second.bytes += bytes;
  total_bytes_ += bytes;
  return Status::OK();
}

std::shared_ptr<Txn> TxnGrpcService::Close(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = open_.find(id);
  if (it == open_.end()) return nullptr;
  auto txn = std::move(it->second.txn);
  total_bytes_ -= it->second.bytes;
  open_.erase(it);
  return txn;
}

bool TxnGrpcService::KeyFits(const std::string& key, grpc::ServerUnaryReactor* reactor) const {
  if (key.size() <= options_.max_key_bytes) return true;
  reactor->Finish(
      Invalid(fmt::format("key of {} bytes; at most {}", key.size(), options_.max_key_bytes)));
  return false;
}

std::shared_ptr<Txn> TxnGrpcService::FindOrFinish(uint64_t id, grpc::ServerUnaryReactor* reactor) {
  auto txn = Find(id);
  if (txn.ok()) return std::move(*txn);
  reactor->Finish(kv::ToGrpcStatus(txn.status()));
  return nullptr;
}

grpc::ServerUnaryReactor* TxnGrpcService::Begin(grpc::CallbackServerContext* ctx,
                                                const v1::BeginRequest* req,
                                                v1::BeginResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto opened = [this, reactor, resp](std::shared_ptr<Txn> txn) {
    const uint64_t start_ts = txn->start_ts();
    auto id = Open(std::move(txn));
    if (!id.ok()) return reactor->Finish(kv::ToGrpcStatus(id.status()));
    resp->set_txn_id(*id);
    resp->set_start_ts(start_ts);
    reactor->Finish(grpc::Status::OK);
  };
  if (req->read_ts() != 0) {
    client_->BeginAt(req->read_ts(), [reactor, opened](Result<std::shared_ptr<Txn>> r) {
      if (!r.ok()) return reactor->Finish(kv::ToGrpcStatus(r.status()));
      opened(std::move(*r));
    });
    return reactor;
  }
  client_->Begin([reactor, opened](Result<std::shared_ptr<Txn>> r) {
    if (!r.ok()) return reactor->Finish(kv::ToGrpcStatus(r.status()));
    opened(std::move(*r));
  });
  return reactor;
}

grpc::ServerUnaryReactor* TxnGrpcService::Get(grpc::CallbackServerContext* ctx,
                                              const v1::GetRequest* req, v1::GetResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!KeyFits(req->key(), reactor)) return reactor;
  std::shared_ptr<Txn> txn = FindOrFinish(req->txn_id(), reactor);
  if (!txn) return reactor;
  txn->Get(req->key(), [reactor, resp](Result<std::optional<std::string>> r) {
    if (!r.ok()) return reactor->Finish(kv::ToGrpcStatus(r.status()));
    if (*r) {
      resp->set_found(true);
      resp->set_value(std::move(**r));
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* TxnGrpcService::BatchGet(grpc::CallbackServerContext* ctx,
                                                   const v1::BatchGetRequest* req,
                                                   v1::BatchGetResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (static_cast<size_t>(req->keys_size()) > options_.max_batch_keys) {
    reactor->Finish(Invalid(fmt::format("{} keys in one BatchGet; at most {}", req->keys_size(),
                                        options_.max_batch_keys)));
    return reactor;
  }
  for (const auto& k : req->keys()) {
    if (!KeyFits(k, reactor)) return reactor;
  }
  std::shared_ptr<Txn> txn = FindOrFinish(req->txn_id(), reactor);
  if (!txn) return reactor;
  std::vector<std::string> keys(req->keys().begin(), req->keys().end());
  txn->BatchGet(std::move(keys), PairsReply(reactor, resp));
  return reactor;
}

grpc::ServerUnaryReactor* TxnGrpcService::Scan(grpc::CallbackServerContext* ctx,
                                               const v1::ScanRequest* req, v1::ScanResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (req->limit() > options_.max_scan_limit) {
    reactor->Finish(Invalid(
        fmt::format("limit {} is above the most, {}", req->limit(), options_.max_scan_limit)));
    return reactor;
  }
  if (req->start().size() > options_.max_key_bytes || req->end().size() > options_.max_key_bytes) {
    reactor->Finish(
        Invalid(fmt::format("scan bound longer than {} bytes", options_.max_key_bytes)));
    return reactor;
  }
  std::shared_ptr<Txn> txn = FindOrFinish(req->txn_id(), reactor);
  if (!txn) return reactor;
  const size_t limit = req->limit() == 0 ? options_.default_scan_limit : req->limit();
  txn->Scan(req->start(), req->end(), limit, PairsReply(reactor, resp));
  return reactor;
}

grpc::ServerUnaryReactor* TxnGrpcService::Put(grpc::CallbackServerContext* ctx,
                                              const v1::PutRequest* req, v1::PutResponse* resp) {
  (void)resp;
  auto* reactor = ctx->DefaultReactor();
  if (!KeyFits(req->key(), reactor)) return reactor;
  if (req->value().size() > options_.max_value_bytes) {
    reactor->Finish(Invalid(fmt::format("value of {} bytes; at most {}", req->value().size(),
                                        options_.max_value_bytes)));
    return reactor;
  }
  std::shared_ptr<Txn> txn = FindOrFinish(req->txn_id(), reactor);
  if (!txn) return reactor;
  if (Status st = Charge(req->txn_id(), req->key().size() + req->value().size()); !st.ok()) {
    reactor->Finish(kv::ToGrpcStatus(st));
    return reactor;
  }
  reactor->Finish(kv::ToGrpcStatus(txn->Put(req->key(), req->value())));
  return reactor;
}

grpc::ServerUnaryReactor* TxnGrpcService::Delete(grpc::CallbackServerContext* ctx,
                                                 const v1::DeleteRequest* req,
                                                 v1::DeleteResponse* resp) {
  (void)resp;
  auto* reactor = ctx->DefaultReactor();
  if (!KeyFits(req->key(), reactor)) return reactor;
  std::shared_ptr<Txn> txn = FindOrFinish(req->txn_id(), reactor);
  if (!txn) return reactor;
  if (Status st = Charge(req->txn_id(), req->key().size()); !st.ok()) {
    reactor->Finish(kv::ToGrpcStatus(st));
    return reactor;
  }
  reactor->Finish(kv::ToGrpcStatus(txn->Delete(req->key())));
  return reactor;
}

grpc::ServerUnaryReactor* TxnGrpcService::Commit(grpc::CallbackServerContext* ctx,
                                                 const v1::CommitRequest* req,
                                                 v1::CommitResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (req->mutations_size() > 0) {
    if (req->txn_id() != 0) {
      reactor->Finish(Invalid(
          "a Commit names an open transaction (txn_id) or carries the mutations of a one-shot "
          "one (txn_id 0), not both: Put or Delete them into the open transaction first"));
      return reactor;
    }
    CommitOneShot(ctx, req, resp, reactor);
    return reactor;
  }
  if (req->txn_id() == 0) {
    reactor->Finish(Invalid(
        "nothing to commit: txn_id 0 names no transaction, and the Commit carries no mutations"));
    return reactor;
  }
  std::shared_ptr<Txn> txn = FindOrFinish(req->txn_id(), reactor);
  if (!txn) return reactor;
  Close(req->txn_id());
  txn->Commit(CommitReply(ctx, reactor, resp));
  return reactor;
}

Status TxnGrpcService::CheckMutations(const v1::CommitRequest& req) const {
  if (static_cast<size_t>(req.mutations_size()) > options_.max_batch_keys) {
    return Status::InvalidArgument(fmt::format("{} mutations in one Commit; at most {}",
                                               req.mutations_size(), options_.max_batch_keys));
  }
  uint64_t bytes = 0;
  for (const v1::Mutation& m : req.mutations()) {
    if (m.key().size() > options_.max_key_bytes) {
      return Status::InvalidArgument(
          fmt::format("key of {} bytes; at most {}", m.key().size(), options_.max_key_bytes));
    }
    switch (m.op()) {
      case v1::Mutation::PUT:
        if (m.value().size() > options_.max_value_bytes) {
          return Status::InvalidArgument(fmt::format("value of {} bytes; at most {}",
                                                     m.value().size(), options_.max_value_bytes));
        }
        break;
      case v1::Mutation::DELETE:
        if (!m.value().empty()) {
          return Status::InvalidArgument("a DELETE mutation carries no value");
        }
        break;
      default:
        return Status::InvalidArgument(
            fmt::format("unknown mutation op {}", static_cast<int>(m.op())));
    }
    // As Put and Delete charge an open transaction.
    bytes += m.key().size() + m.value().size();
  }
  // InvalidArgument rather than Put's ResourceExhausted: this request can never pass, and a
  // client takes a Commit refused with it as definitely not applied.
  if (bytes > options_.max_txn_bytes) {
    return Status::InvalidArgument(
        fmt::format("the mutations hold {} bytes of keys and values; one transaction may write "
                    "at most {}",
                    bytes, options_.max_txn_bytes));
  }
  return Status::OK();
}

void TxnGrpcService::CommitOneShot(grpc::CallbackServerContext* ctx, const v1::CommitRequest* req,
                                   v1::CommitResponse* resp, grpc::ServerUnaryReactor* reactor) {
  if (Status st = CheckMutations(*req); !st.ok()) return reactor->Finish(kv::ToGrpcStatus(st));
  // The transaction is never in the table of open ones: no other call can name it. `req` and
  // `resp` live until the call is finished.
  client_->BeginWrite([ctx, req, resp, reactor](Result<std::shared_ptr<Txn>> r) {
    if (!r.ok()) {
      // No start_ts, so nothing was written: a definite "did not commit", whatever the cause.
      ctx->AddTrailingMetadata(kv::kNotAppliedMetadata, "1");
      return reactor->Finish(
          grpc::Status(grpc::StatusCode::UNAVAILABLE,
                       fmt::format("could not begin the transaction (nothing was written): {}",
                                   r.status().message())));
    }
    std::shared_ptr<Txn> txn = std::move(*r);
    for (const v1::Mutation& m : req->mutations()) {
      Status st = m.op() == v1::Mutation::PUT ? txn->Put(m.key(), m.value()) : txn->Delete(m.key());
      if (!st.ok()) {
        txn->Rollback();
        return reactor->Finish(kv::ToGrpcStatus(st));
      }
    }
    txn->Commit(CommitReply(ctx, reactor, resp));
  });
}

grpc::ServerUnaryReactor* TxnGrpcService::Rollback(grpc::CallbackServerContext* ctx,
                                                   const v1::RollbackRequest* req,
                                                   v1::RollbackResponse* resp) {
  (void)resp;
  auto* reactor = ctx->DefaultReactor();
  std::shared_ptr<Txn> txn = Close(req->txn_id());
  if (!txn) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND,
                     fmt::format("no open transaction {} on this node", req->txn_id())));
    return reactor;
  }
  txn->Rollback();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace micedb::txn
