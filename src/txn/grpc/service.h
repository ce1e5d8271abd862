// TxnGrpcService: the gRPC service micedb.txn.v1.Txn (proto/micedb/txn_service.proto) on a
// TxnClient. The node is each transaction's gateway: open transactions (their buffered
// writes) live in a table here, named by txn_id, bounded in number, size and idle time.
// Calls are answered from the client's callbacks (gRPC's callback API): no gRPC thread waits
// for the cluster.
//
// Thread-safe. The service must outlive the server; the client must outlive the service.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "micedb/txn_service.grpc.pb.h"
#include "txn/client.h"

namespace micedb::txn {

struct TxnServiceOptions {
  size_t max_open = 10000;          // open transactions at once on this node
  int64_t idle_timeout_ms = 60000;  // an open transaction without a call this long is dropped
  uint64_t max_txn_bytes = uint64_t{128} << 20;  // buffered keys and values of one transaction
  uint64_t max_total_bytes = uint64_t{1} << 30;  // ... of all open transactions on this node
  size_t max_key_bytes = size_t{64} << 10;
  size_t max_value_bytes = size_t{8} << 20;
  uint32_t default_scan_limit = 1000;
  uint32_t max_scan_limit = 10000;
  size_t max_batch_keys = 10000;
};

class TxnGrpcService final : public v1::Txn::CallbackService {
 public:
  // Neither is owned.
  TxnGrpcService(TxnClient* client, const Clock* clock, TxnServiceOptions options = {});

  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* ctx, const v1::BeginRequest* req,
                                  v1::BeginResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* BatchGet(grpc::CallbackServerContext* ctx,
                                     const v1::BatchGetRequest* req,
                                     v1::BatchGetResponse* resp) override;
  grpc::ServerUnaryReactor* Scan(grpc::CallbackServerContext* ctx, const v1::ScanRequest* req,
                                 v1::ScanResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const v1::PutRequest* req,
                                v1::PutResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* ctx, const v1::CommitRequest* req,
                                   v1::CommitResponse* resp) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* ctx,
                                     const v1::RollbackRequest* req,
                                     v1::RollbackResponse* resp) override;

 private:
  struct Session {
    std::shared_ptr<Txn> txn;
    int64_t last_used_ms = 0;
    uint64_t bytes = 0;  // buffered
  };
  // The open transaction `id` (its idle clock restarted), or NOT_FOUND.
  Result<std::shared_ptr<Txn>> Find(uint64_t id) EXCLUDES(mu_);
  // Adds `bytes` to the transaction's buffered size; RESOURCE_EXHAUSTED past the limit.
  Status Charge(uint64_t id, uint64_t bytes) EXCLUDES(mu_);
  // The open transaction `id`, or null after finishing the call with NOT_FOUND.
  std::shared_ptr<Txn> FindOrFinish(uint64_t id, grpc::ServerUnaryReactor* reactor) EXCLUDES(mu_);
  // Whether `key` is short enough; else the call is finished with INVALID_ARGUMENT.
  bool KeyFits(const std::string& key, grpc::ServerUnaryReactor* reactor) const;
  // A Commit with mutations and txn_id 0: Begin, the mutations, Commit, in one call.
  void CommitOneShot(grpc::CallbackServerContext* ctx, const v1::CommitRequest* req,
                     v1::CommitResponse* resp, grpc::ServerUnaryReactor* reactor);
  // The mutations of a one-shot Commit held to Put's and Delete's limits: InvalidArgument
  // for too many, a key or value too long, a value on a delete, an unknown op, or more bytes
  // than one transaction may buffer.
  Status CheckMutations(const v1::CommitRequest& req) const;
  Result<uint64_t> Open(std::shared_ptr<Txn> txn) EXCLUDES(mu_);
  std::shared_ptr<Txn> Close(uint64_t id) EXCLUDES(mu_);
  void DropIdle() REQUIRES(mu_);
  int64_t NowMs() const;

  TxnClient* client_;
  const Clock* clock_;
  const TxnServiceOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Session> open_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_);
  uint64_t total_bytes_ GUARDED_BY(mu_) = 0;  // buffered by all open transactions
  int64_t last_sweep_ms_ GUARDED_BY(mu_) = 0;
};

}  // namespace micedb::txn
