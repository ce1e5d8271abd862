// Internal to src/transport: region snapshots between nodes (docs/transport.md, "gRPC
// services"). The sender (PeerTransport::RunSnapshot, on a thread per snapshot) has the store
// export the snapshot's files into a directory of its own, streams them to the receiver in
// chunks of TransportOptions::snapshot_chunk_bytes, each with a masked CRC32C, and ends with
// a chunk carrying the raft message. The receiver, the gRPC service below, stages the files
// in a directory laid out as store::SnapshotFilePath says and hands the message and the
// directory to the handler, which then owns the directory.
#pragma once

#include <grpcpp/grpcpp.h>

#include "micedb/transport.grpc.pb.h"
#include "transport/peer_transport.h"

namespace micedb::transport {

// Receives snapshots. Register it on the node's gRPC server (PeerTransport::service()).
// Thread-safe: gRPC may run several streams at once; each stages into a directory of its own.
class PeerTransport::SnapshotService final : public RaftTransport::Service {
 public:
  explicit SnapshotService(PeerTransport* t) : t_(t) {}

  // Always answers OK at the gRPC level; SnapshotDone says whether the snapshot arrived whole
  // (a chunk failed its checksum, a file could not be written, or the stream ended early).
  grpc::Status SendSnapshot(grpc::ServerContext* ctx, grpc::ServerReader<SnapshotChunk>* reader,
                            SnapshotDone* resp) override;

 private:
  PeerTransport* const t_;
};

}  // namespace micedb::transport
