// KvGrpcService: the gRPC service micedb.kv.v1.Kv (proto/micedb/kv_service.proto,
// docs/kv-grpc.md) on a KvBackend. Requests are checked and translated by KvApi and
// ScanPager; this class only puts them on the wire with gRPC's callback API, so no gRPC
// thread ever waits for the store: a unary call is finished from the backend's callback, and
// Scan fetches its next page only after the previous page's messages have been written
// (flow control comes from the client reading the stream).
//
// Errors: INVALID_ARGUMENT for bad input, UNAVAILABLE when no leader could take the request
// (with trailing metadata kNotAppliedMetadata: nothing was applied), DEADLINE_EXCEEDED when
// the store gave no answer in time (a write may have been applied), INTERNAL otherwise.
//
// Thread-safe. Register it with a grpc::ServerBuilder whose receive limit
// (SetMaxReceiveMessageSize; gRPC's default is 4 MiB) admits the largest value plus its key.
// The service must outlive the server, and the backend must outlive it and answer every
// request it was given (the server waits for them on shutdown).
#pragma once

#include <grpcpp/grpcpp.h>

#include "kv/backend.h"
#include "kv/grpc/kv_api.h"
#include "micedb/kv_service.grpc.pb.h"

namespace micedb::kv {

class KvGrpcService final : public v1::Kv::CallbackService {
 public:
  // `backend` is not owned.
  explicit KvGrpcService(KvBackend* backend, KvApiOptions options = {});

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const v1::PutRequest* req,
                                v1::PutResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override;
  grpc::ServerWriteReactor<v1::ScanResponse>* Scan(grpc::CallbackServerContext* ctx,
                                                   const v1::ScanRequest* req) override;
  grpc::ServerUnaryReactor* BatchGet(grpc::CallbackServerContext* ctx,
                                     const v1::BatchGetRequest* req,
                                     v1::BatchGetResponse* resp) override;
  grpc::ServerUnaryReactor* BatchPut(grpc::CallbackServerContext* ctx,
                                     const v1::BatchPutRequest* req,
                                     v1::BatchPutResponse* resp) override;
  grpc::ServerUnaryReactor* CompareAndSwap(grpc::CallbackServerContext* ctx,
                                           const v1::CompareAndSwapRequest* req,
                                           v1::CompareAndSwapResponse* resp) override;

 private:
  template <typename Req, typename Resp>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx,
                                  void (KvApi::*method)(const Req&, Resp*, KvApi::Done) const,
                                  const Req* req, Resp* resp);

  const KvApi api_;
};

}  // namespace micedb::kv
