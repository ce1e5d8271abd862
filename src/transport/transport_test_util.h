// Shared by the transport tests: a snapshot stream of one last chunk, sent over gRPC.
#pragma once

#include <chrono>
#include <memory>

#include <grpcpp/grpcpp.h>

#include "micedb/transport.grpc.pb.h"

namespace micedb::transport {

// Streams a snapshot to the other end of `channel` that is only its last chunk, carrying
// `msg` (a region 1 snapshot from node 1), and returns how the stream ended; *done gets the
// receiver's answer.
inline grpc::Status SendLastSnapshotChunk(const std::shared_ptr<grpc::Channel>& channel,
                                          const raft::Message& msg, SnapshotDone* done,
                                          bool* written) {
  auto stub = RaftTransport::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto writer = stub->SendSnapshot(&ctx, done);
  SnapshotChunk last;
  last.set_from_node(1);
  last.set_region_id(1);
  last.set_last(true);
  *last.mutable_msg() = msg;
  *written = writer->Write(last);
  writer->WritesDone();
  return writer->Finish();
}

}  // namespace micedb::transport
