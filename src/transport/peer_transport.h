// PeerTransport: the store's Transport, and everything else nodes say to each other, on each
// node's one peer port (docs/transport.md).
//
// The transport owns the peer port. Each accepted connection is sorted by its first bytes:
// one that starts with the raft stream's magic carries raft messages (below); anything else
// is handed to the node's gRPC server (snapshots, request forwarding, admin, status, the KV
// API), which therefore listens on no port of its own.
//
// Raft messages do not go through gRPC: a round of the raft loop would cost several thread
// hand-offs per message there (sender thread, gRPC pollers, sync server thread), which on a
// small machine cost more than the rest of a write. Instead each node keeps one plain TCP
// connection to each destination and writes length-prefixed RaftBatch frames to it directly
// from the caller's thread (the raft loop), without waiting: a write the socket cannot take
// at once is finished by the transport's I/O thread. That thread also connects (reconnecting
// with backoff from 50 ms to 1 s), and reads incoming connections, handing each read's
// messages to the store at once. A destination that is down or unreachable only fills its
// own bounded queue; its messages are then dropped (raft retransmits), and raft is told.
// Client requests forwarded to another node travel on the same streams.
// Snapshots go through a gRPC streaming RPC in 1 MiB chunks, each with a CRC32C.
//
// Files: peer_transport.cc (lifecycle, the peer port, addresses), frame_reader.{h,cc} (the
// stream's frame format and its socket-free reader), raft_stream.{h,cc} (one outgoing stream
// per destination, incoming streams), forwarding.cc
// (forwarded requests), snapshot_stream.{h,cc} (sending and receiving snapshots).
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/result.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "micedb/transport.grpc.pb.h"
#include "security/net_stream.h"
#include "store/transport.h"

namespace micedb::transport {

// Where received traffic and delivery reports go (the store, and the router for forwarded
// requests).
class InboundHandler {
 public:
  virtual ~InboundHandler() = default;
  virtual void OnMessages(std::vector<raft::Message> msgs) = 0;
  // A request node `from` forwarded here; answer it with PeerTransport::ReplyForward(from, id).
  virtual void OnForward(NodeId from, uint64_t id, ForwardRequest request) = 0;
  // A snapshot arrived whole: its files are staged durably and match the sender's checksums
  // (store/snapshot_stage.h). The handler owns the staging directory from here on.
  virtual void OnSnapshot(raft::Message msg, store::StagedSnapshot staged) = 0;
  virtual void OnSnapshotSent(uint64_t region, NodeId to, bool ok) = 0;
  virtual void OnUnreachable(NodeId to) = 0;
  // Node `by` refused this node's raft stream (TransportOptions::check_peer there, or other
  // raft timing): `reason` says why and what the operator should do. `keep_running`: a
  // settings mismatch (the stream is retried), not a verdict on this node's identity.
  virtual void OnRefused(NodeId by, const std::string& reason, bool keep_running) {}
};

// Decides whether a peer may talk to this node (store::PeerIdentities::Check): nullopt, or
// why not. Called on the I/O thread for every frame that names its sender.
using PeerCheck = std::function<std::optional<std::string>(NodeId from, uint64_t cluster_id,
                                                           uint64_t incarnation)>;

struct TransportOptions {
  NodeId node_id;
  std::string listen_addr;             // our peer address, told to the nodes we send to
  std::string snap_dir;                // staging for snapshots sent and received
  size_t max_queued_messages = 16384;  // per destination, not yet written; more are dropped
  // Bytes of appends, snapshots and forwarded requests queued for one destination and not
  // yet written; a frame that would pass it is dropped (raft resends; a forwarded request
  // fails as Unavailable). Room for a few of the largest requests (128 MiB).
  size_t max_queued_bytes = size_t{512} << 20;
  size_t max_frame_bytes = 256 << 20;  // a larger incoming frame closes the connection
  // Incoming raft streams open at once (one per peer is normal; a reconnecting peer may hold
  // two briefly); more are closed when they arrive.
  size_t max_inbound_streams = 64;
  size_t snapshot_chunk_bytes = 1 << 20;
  // Stamped on every frame this node sends (store::StoreIdent); 0: none.
  uint64_t cluster_id = 0;
  uint64_t incarnation = 0;
  // Checks the sender of every frame received; empty: everyone is let in.
  PeerCheck check_peer;
  // Mutual TLS on the peer port (security/tls.h; docs/security.md). Null: plain TCP, which a
  // node only runs with --insecure or on loopback. tls_server accepts raft streams (ALPN
  // micedb-raft, node certificates only) and the gRPC services (ALPN h2); tls_client opens
  // raft streams; channel_creds make the gRPC channels to other nodes.
  std::shared_ptr<asio::ssl::context> tls_server;
  std::shared_ptr<asio::ssl::context> tls_client;
  std::shared_ptr<grpc::ChannelCredentials> channel_creds;
  // Stamped on every frame this node sends; a stream whose sender tells other values is
  // refused (Refusal.keep_running: neither side stops). 0: neither stamped nor checked.
  uint32_t tick_ms = 0;
  uint32_t election_ticks = 0;
};

class PeerTransport : public store::Transport {
 public:
  PeerTransport(TransportOptions options, InboundHandler* handler);
  ~PeerTransport() override;

  // Binds `addr` (host:port; port 0 picks one) and starts serving it: raft streams here,
  // every other connection to `grpc_server`, which must be started (with no listening port)
  // and outlive StopListening. Errors: IoError when the address cannot be bound.
  Status Listen(const std::string& addr, grpc::Server* grpc_server);
  // The port Listen bound (0 before).
  int port() const { return port_.load(); }
  // Stops accepting connections and closes the raft streams received. Idempotent.
  void StopListening();

  void Send(raft::Message m) override;
  void SendBatch(std::vector<raft::Message> msgs) override;
  // Exports the source's files and streams them on a thread of its own (snapshot_stream.cc).
  void SendSnapshot(raft::Message m, store::SnapshotSource source) override;
  void SetAddress(NodeId id, const std::string& addr) override;

  // A gRPC channel to node `id` (null when its address is unknown), shared with other users
  // such as snapshots and admin commands.
  std::shared_ptr<grpc::Channel> ChannelTo(NodeId id);

  // Sends a client request to node `to` on the raft stream; `done` gets its answer, or
  // Unavailable when it could not be sent or the stream broke before the answer came (it may
  // then have run there), or TimedOut after `timeout`. `done` runs on a transport thread and
  // must not block.
  using ForwardCallback = std::function<void(Result<ForwardResponse>)>;
  void Forward(NodeId to, ForwardRequest request, std::chrono::milliseconds timeout,
               ForwardCallback done);
  // Answers request `id` that node `to` forwarded here (InboundHandler::OnForward).
  void ReplyForward(NodeId to, uint64_t id, ForwardResponse response);

  // The gRPC service that receives snapshots; register it on the node's server.
  grpc::Service* service();

  // Stops listening, closes every connection, stops the I/O thread and waits for snapshot
  // senders. Idempotent.
  void Shutdown();

  uint64_t dropped_messages() const { return dropped_.load(); }
  // Raft messages handed to the transport, and writes to the raft streams' sockets.
  uint64_t messages_sent() const { return messages_sent_.load(); }
  uint64_t socket_writes() const { return socket_writes_.load(); }

 private:
  class Peer;             // one outgoing raft stream (raft_stream.h)
  class Inbound;          // one incoming raft stream (raft_stream.h)
  class SnapshotService;  // receives snapshots (snapshot_stream.h)
  class GrpcBridge;       // a TLS connection's gRPC traffic (peer_tls.cc)

  // The outgoing stream to `id`, made on first use; null when its address is unknown or the
  // transport is shut down.
  Peer* GetPeer(NodeId id);
  // Records `addr` for `id` if no address is known yet.
  void LearnAddress(NodeId id, const std::string& addr);
  // The peer port: accepts connections, and decides what each is from its first bytes.
  void Accept();
  void Sort(const std::shared_ptr<asio::ip::tcp::socket>& socket,
            const std::shared_ptr<asio::steady_timer>& deadline);
  // Under TLS: the handshake, then the protocol ALPN chose (peer_tls.cc).
  void Secure(asio::ip::tcp::socket socket);
  // A raft stream whose magic has been read: counted against max_inbound_streams, started.
  void StartInbound(security::NetStream stream);
  // Hands a TLS connection's decrypted bytes to the gRPC server through a socket pair.
  void BridgeToGrpc(std::shared_ptr<security::NetStream> stream);
  // Snapshot thread: exports, streams and reports one snapshot.
  void RunSnapshot(const raft::Message& m, store::SnapshotSource source);
  // Forwarding: answers arrived; the stream to `to` broke; deadlines.
  void OnForwardReplies(ForwardReplies replies);
  void FailForwards(NodeId to);
  void ExpireForwards();

  TransportOptions options_;
  InboundHandler* handler_;
  std::unique_ptr<SnapshotService> service_;

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::ip::tcp::acceptor acceptor_;  // I/O thread once listening
  std::thread io_thread_;
  std::atomic<int> port_{0};

  std::mutex mu_;
  std::map<NodeId, std::unique_ptr<Peer>> peers_ GUARDED_BY(mu_);
  std::map<NodeId, std::string> addresses_ GUARDED_BY(mu_);
  std::vector<std::thread> snapshot_threads_ GUARDED_BY(mu_);
  std::vector<std::weak_ptr<Inbound>> inbound_ GUARDED_BY(mu_);
  grpc::Server* grpc_server_ GUARDED_BY(mu_) = nullptr;
  bool listening_ GUARDED_BY(mu_) = false;

  // Forwarded requests waiting for their answer, by id.
  struct PendingForward {
    NodeId to;
    std::chrono::steady_clock::time_point deadline;
    ForwardCallback done;
  };
  std::mutex fwd_mu_;
  std::map<uint64_t, PendingForward> fwd_pending_ GUARDED_BY(fwd_mu_);
  uint64_t fwd_next_id_ GUARDED_BY(fwd_mu_) = 1;
  asio::steady_timer fwd_timer_;  // runs while requests wait
  bool fwd_timer_running_ GUARDED_BY(fwd_mu_) = false;

  std::atomic<bool> shutdown_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> messages_sent_{0};
  std::atomic<uint64_t> socket_writes_{0};
  std::atomic<uint64_t> snap_seq_{0};
};

}  // namespace micedb::transport
