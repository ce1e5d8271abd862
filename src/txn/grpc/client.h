// TxnGrpcClient: a blocking client of micedb.txn.v1.Txn (proto/micedb/txn_service.proto) for
// `micedb txn` and tests. Every call is sent to the one node given, the gateway of the
// transactions begun there. Reads, Put and Delete are retried on UNAVAILABLE under the call's
// timeout (each is idempotent); Commit and Write are not (an UNAVAILABLE commit did not commit,
// and the transaction is closed).
//
// Thread-compatible: one caller at a time, or one client per thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "micedb/txn_service.grpc.pb.h"

namespace micedb::txn {

struct TxnGrpcClientOptions {
  std::chrono::milliseconds timeout{10000};               // per call, retries included
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
};

class TxnGrpcClient {
 public:
  explicit TxnGrpcClient(const std::string& addr, TxnGrpcClientOptions options = {});

  struct Handle {
    uint64_t id = 0;
    uint64_t start_ts = 0;
  };
  // read_ts 0: a fresh snapshot; otherwise a read-only transaction at read_ts.
  Result<Handle> Begin(uint64_t read_ts = 0);
  Result<std::optional<std::string>> Get(uint64_t id, const std::string& key);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  Result<Pairs> BatchGet(uint64_t id, const std::vector<std::string>& keys);
  Result<Pairs> Scan(uint64_t id, const std::string& start, const std::string& end, uint32_t limit);
  Status Put(uint64_t id, const std::string& key, const std::string& value);
  Status Delete(uint64_t id, const std::string& key);
  // The commit_ts (0: nothing was written). Aborted: a conflict, retry from Begin.
  // Unavailable: the node says it did not commit. TimedOut: the outcome is unknown (no
  // answer, or the connection broke).
  Result<uint64_t> Commit(uint64_t id);
  Status Rollback(uint64_t id);

  struct Mutation {
    enum class Op { kPut, kDelete };
    Op op = Op::kPut;
    std::string key;
    std::string value;  // kPut only
  };
  // A write-only transaction in one call (Commit with txn_id 0): the node begins it, applies
  // `mutations` in order (a later one of the same key wins) and commits. The commit_ts, or
  // the errors of Commit; InvalidArgument also for no mutations, more than the node takes in
  // one call (10,000 by default) or more bytes than one transaction may write
  // (--max-txn-bytes).
  Result<uint64_t> Write(const std::vector<Mutation>& mutations);

 private:
  Status Call(bool retry, const std::function<grpc::Status(grpc::ClientContext*)>& attempt);
  // Sends one Commit (never retried) and sorts its outcome into definite and unknown.
  Result<uint64_t> SendCommit(const v1::CommitRequest& req);

  TxnGrpcClientOptions options_;
  std::unique_ptr<v1::Txn::Stub> stub_;
};

}  // namespace micedb::txn
