// Internal to src/transport: the raft stream between two nodes' peer ports (docs/transport.md,
// "Raft stream"; its frames are in frame_reader.h), and the two ends of a stream: Peer writes the
// stream to one destination, Inbound reads one stream received.
#pragma once

#include <asio.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message_lite.h>
#include <grpcpp/grpcpp.h>

#include "common/thread_annotations.h"
#include "security/net_stream.h"
#include "transport/frame_reader.h"
#include "transport/peer_transport.h"

namespace micedb::transport {

// Why a sender with this raft timing must be refused (a voter of other timing keeps a promise
// of another length than the leader's lease assumes), or nullopt when it matches ours or
// either side does not check (0).
std::optional<std::string> TimingMismatch(const TransportOptions& ours, uint64_t node,
                                          uint32_t tick_ms, uint32_t election_ticks);
// One write to the socket takes the urgent frames plus bulk frames up to about this much.
inline constexpr size_t kWriteChunkBytes = 256 << 10;

// Appends one frame carrying `msg` to `out`.
void AppendFrame(std::string* out, uint8_t type, const google::protobuf::MessageLite& msg);
// Whether a raft message must keep its place among the stream's other bulk frames (appends
// and snapshots, whose order matters for flow control); the rest (heartbeats, votes,
// responses) may pass them.
bool KeepsOrder(const raft::Message& m);

// Socket options for both ends of a raft stream: no Nagle delay, keepalive and a user
// timeout that end a connection to a node that vanished without closing it.
void SetStreamOptions(asio::ip::tcp::socket& s);

// Splits "host:port" or "[v6]:port". False when `addr` has no host or no port.
bool SplitHostPort(const std::string& addr, std::string* host, std::string* port);

// One destination: the outgoing raft stream, and the gRPC channel to the same address.
//
// Callers of Enqueue (the raft loop) write to the socket themselves when nothing is being
// written; when the socket cannot take everything, the rest and whatever queues meanwhile
// are written by the I/O thread (writing_). Connecting, failures and reconnects happen on
// the I/O thread; every connection attempt gets a new generation, so that completions of an
// older one are ignored. Thread-safe.
class PeerTransport::Peer {
 public:
  Peer(PeerTransport* t, NodeId id, std::string addr);

  // Replaces the destination's address; a stream in use reconnects to the new one, keeping
  // the frames not yet written.
  void SetAddress(std::string addr);
  std::shared_ptr<grpc::Channel> channel();

  // Queuing raft messages takes two steps, so that a caller with several destinations sends
  // every urgent message before it serializes any big one. Appends and snapshots are bulk:
  // one frame, in order with the other bulk frames; the rest make one urgent frame, which
  // goes out before bulk frames not yet written. Messages over the queue's bound are dropped
  // and counted.
  // First: takes the messages out of `msgs`, queues the urgent ones and writes them now if
  // the socket is free, and returns the others for EnqueueBulk (empty when there are none).
  RaftBatch EnqueueUrgent(std::vector<raft::Message>& msgs);
  // Serializes `bulk` without holding the lock (the I/O thread keeps writing meanwhile),
  // then queues it.
  void EnqueueBulk(const RaftBatch& bulk);

  // Queues one bulk frame that counts as `weight` messages against the queue's bound. With
  // write_now false the write is left to the I/O thread, so that frames queued in a burst
  // (answers to forwarded requests, from the raft loop) share one write. False when the
  // queue is full and the frame was dropped.
  bool EnqueueFrame(uint8_t type, const google::protobuf::MessageLite& payload, size_t weight,
                    bool write_now);

  // Closes the stream for good. Call with the I/O thread stopped.
  void Stop();

 private:
  enum class State { kIdle, kConnecting, kConnected, kBackoff };

  // One queued bulk frame, or one fragment of a long frame (`whole` shared by its fragments,
  // serialized once; each fragment's header is written when it is sent).
  struct Queued {
    std::string bytes;                    // a whole short frame
    std::shared_ptr<const char[]> whole;  // a long frame's bytes (header included)
    size_t off = 0;                       // this fragment: whole[off, off + len)
    size_t len = 0;
    size_t msgs = 0;  // messages it completes
    size_t size() const { return whole ? kHeaderBytes + len : bytes.size(); }
  };

  void QueuedLocked(bool write_now) REQUIRES(mu_);
  // Queues a bulk frame, in fragments when it is long. False (and the messages counted as
  // dropped) when it would pass max_queued_bytes while other bulk frames wait.
  bool AppendBulkLocked(uint8_t type, const google::protobuf::MessageLite& payload, size_t msgs)
      REQUIRES(mu_);
  // AppendBulkLocked in two steps: serializing (any thread, no lock), then queueing.
  struct Prepared {
    std::string bytes;                    // a short frame
    std::shared_ptr<const char[]> whole;  // or a long one, to be sent in fragments
    size_t total = 0;                     // its bytes, header included
  };
  static Prepared Prepare(uint8_t type, const google::protobuf::MessageLite& payload);
  bool PushBulkLocked(Prepared frame, size_t msgs) REQUIRES(mu_);
  bool HasQueuedLocked() const REQUIRES(mu_) { return !urgent_.empty() || !bulk_.empty(); }
  size_t QueuedMsgsLocked() const REQUIRES(mu_) { return urgent_msgs_ + bulk_msgs_; }
  // Moves what the next write should carry into `out` (appending): every urgent frame, then
  // bulk frames up to kWriteChunkBytes (at least one). Returns the messages it completes.
  size_t ComposeLocked(std::string* out) REQUIRES(mu_);
  // Drops everything queued (counted as dropped).
  void DropQueuedLocked() REQUIRES(mu_);
  void WriteLocked() REQUIRES(mu_);
  void AsyncWriteLocked() REQUIRES(mu_);
  void ConnectLocked() REQUIRES(mu_);
  void ResolveLocked() REQUIRES(mu_);
  // Under TLS: the handshake, and the check that the other end is a node of the cluster.
  void HandshakeLocked() REQUIRES(mu_);
  void OnConnectedLocked() REQUIRES(mu_);
  // Called with `l` holding mu_; returns with it released (it calls the handler).
  void FailLocked(std::unique_lock<std::mutex>& l);
  void CloseLocked() REQUIRES(mu_);

  static constexpr int kMinBackoffMs = 50;
  static constexpr int kMaxBackoffMs = 1000;

  PeerTransport* const t_;
  const NodeId id_;
  std::mutex mu_;
  std::string addr_ GUARDED_BY(mu_);
  std::shared_ptr<grpc::Channel> channel_ GUARDED_BY(mu_);  // for snapshots and forwarding
  // The connection (a new one per attempt; handlers keep theirs alive until they run).
  std::shared_ptr<security::NetStream> stream_ GUARDED_BY(mu_);
  asio::ip::tcp::resolver resolver_ GUARDED_BY(mu_);
  asio::steady_timer backoff_timer_ GUARDED_BY(mu_);
  State state_ GUARDED_BY(mu_) = State::kIdle;
  uint64_t gen_ GUARDED_BY(mu_) = 0;
  bool writing_ GUARDED_BY(mu_) = false;  // in_flight_ is being written by the I/O thread
  // Frames not yet handed to the socket: urgent ones, and bulk ones in order.
  std::string urgent_ GUARDED_BY(mu_);
  size_t urgent_msgs_ GUARDED_BY(mu_) = 0;
  std::deque<Queued> bulk_ GUARDED_BY(mu_);
  size_t bulk_msgs_ GUARDED_BY(mu_) = 0;
  size_t bulk_bytes_ GUARDED_BY(mu_) = 0;  // the sizes of bulk_
  std::string in_flight_ GUARDED_BY(mu_);  // what the I/O thread is writing
  size_t in_flight_msgs_ GUARDED_BY(mu_) = 0;
  int backoff_ms_ GUARDED_BY(mu_) = kMinBackoffMs;
  bool flush_posted_ GUARDED_BY(mu_) =
      false;  // a write of the queue by the I/O thread is on its way
  bool stopped_ GUARDED_BY(mu_) = false;
  char watch_buf_[4096];  // what the receiver writes back: only ever a refusal
};

// One incoming raft stream. Reads frames and hands them on: raft messages to the store (each
// read's messages as one task), forwarded requests to the handler, answers to forwarded
// requests to the transport's pending table. I/O thread only.
class PeerTransport::Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  // `stream`: past the TLS handshake (if any) and the magic.
  Inbound(PeerTransport* t, security::NetStream stream);

  void Start() { Read(); }
  void Close();

 private:
  void Read();
  void OnRead(const asio::error_code& ec, size_t n);
  // Handles one complete frame; false when the stream must close (it does not parse).
  bool HandleFrame(const Frame& frame, std::vector<raft::Message>* msgs);
  // The first frame that names its sender's address teaches it (a node that just joined).
  void LearnSender(uint64_t node, const std::string& addr);
  // The sender's raft timing (TimingMismatch), then TransportOptions::check_peer on a frame's
  // sender; on a refusal, writes it back and returns false (the caller closes the stream).
  bool Admit(uint64_t node, uint64_t cluster_id, uint64_t incarnation, uint32_t tick_ms,
             uint32_t election_ticks);

  PeerTransport* const t_;
  security::NetStream stream_;
  FrameReader reader_;
  bool learned_ = false;
  bool admitted_ = false;  // the sender passed check_peer
};

}  // namespace micedb::transport
