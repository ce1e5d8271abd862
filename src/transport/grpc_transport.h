// GrpcTransport: the store's Transport over gRPC (docs/transport.md).
//
// Raft messages go through one long-lived client stream per destination node, fed by a
// bounded queue and a sender thread that batches whatever has queued up while the previous
// write was in flight. A destination that is down only fills (and then overflows) its own
// queue: raft retransmits, and nothing else slows. Reconnects back off from 50 ms to 1 s.
// Snapshots go through a separate streaming RPC in 1 MiB chunks, each with a CRC32C.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "micedb/transport.grpc.pb.h"
#include "store/transport.h"

namespace micedb::transport {

// Where received traffic and delivery reports go (the store).
class InboundHandler {
 public:
  virtual ~InboundHandler() = default;
  virtual void OnMessages(std::vector<raft::Message> msgs) = 0;
  virtual void OnSnapshot(raft::Message msg, std::string dir) = 0;
  virtual void OnSnapshotSent(uint64_t region, NodeId to, bool ok) = 0;
  virtual void OnUnreachable(NodeId to) = 0;
};

struct TransportOptions {
  NodeId node_id;
  std::string listen_addr;             // our peer address, told to the nodes we send to
  std::string snap_dir;                // staging for snapshots sent and received
  size_t max_queued_messages = 16384;  // per destination; more are dropped
  size_t max_batch_messages = 4096;    // per stream write
  size_t snapshot_chunk_bytes = 1 << 20;
};

class GrpcTransport : public store::Transport {
 public:
  GrpcTransport(TransportOptions options, InboundHandler* handler);
  ~GrpcTransport() override;

  void Send(raft::Message m) override;
  void SendSnapshot(raft::Message m, store::SnapshotSource source) override;
  void SetAddress(NodeId id, const std::string& addr) override;

  // A channel to node `id` (null when its address is unknown), shared with other users such
  // as request forwarding.
  std::shared_ptr<grpc::Channel> ChannelTo(NodeId id);

  // The gRPC service that receives raft traffic; register it on the node's server.
  grpc::Service* service();

  // Stops sender threads and waits for them. Idempotent.
  void Shutdown();

  uint64_t dropped_messages() const { return dropped_.load(); }

 private:
  class Peer;
  class Service;
  Peer* GetPeer(NodeId id);
  void RunSnapshot(raft::Message m, store::SnapshotSource source);
  // Records `addr` for `id` if no address is known yet.
  void LearnAddress(NodeId id, const std::string& addr);

  TransportOptions options_;
  InboundHandler* handler_;
  std::unique_ptr<Service> service_;
  std::mutex mu_;
  std::map<NodeId, std::unique_ptr<Peer>> peers_;
  std::map<NodeId, std::string> addresses_;
  std::vector<std::thread> snapshot_threads_;
  std::atomic<bool> shutdown_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> snap_seq_{0};
};

}  // namespace micedb::transport
