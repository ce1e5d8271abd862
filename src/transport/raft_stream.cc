#include "transport/raft_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/coding.h"
#include "common/logging.h"
#include "security/certs.h"
#include "security/tls.h"

namespace micedb::transport {

using asio::ip::tcp;

namespace {
spdlog::logger* Log() { return GetLogger("transport"); }

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  // Find out quickly when a node is gone, and reconnect quickly when it is back.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  // Despite its name, gRPC takes this as the least time one connection attempt gets
  // (connect, TLS handshake, the server's first SETTINGS frame); 50 ms failed TLS
  // connections on a busy machine.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 256 << 20);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 256 << 20);
  return args;
}

}  // namespace

namespace {

// Writes the frame of `msg` (whose ByteSizeLong() was `n`, so its sizes are cached) at `p`,
// which has room for kHeaderBytes + n.
void WriteFrame(char* p, uint8_t type, const google::protobuf::MessageLite& msg, size_t n) {
  EncodeFixed32(p, static_cast<uint32_t>(n));
  p[4] = static_cast<char>(type);
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + kHeaderBytes));
}

void AppendFrameOfSize(std::string* out, uint8_t type, const google::protobuf::MessageLite& msg,
                       size_t n) {
  const size_t at = out->size();
  out->resize(at + kHeaderBytes + n);
  WriteFrame(out->data() + at, type, msg, n);
}

}  // namespace

void AppendFrame(std::string* out, uint8_t type, const google::protobuf::MessageLite& msg) {
  AppendFrameOfSize(out, type, msg, msg.ByteSizeLong());
}

bool KeepsOrder(const raft::Message& m) {
  return m.type() == raft::MSG_APP || m.type() == raft::MSG_SNAP;
}

// Both ends: no Nagle delay (a round's messages are written together already), and notice a
// peer that vanished without closing (power loss, partition) within seconds, as the gRPC
// keepalive settings (ChannelArgs) do for the other traffic.
void SetStreamOptions(tcp::socket& s) {
  asio::error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  s.set_option(asio::socket_base::keep_alive(true), ignored);
  const int fd = s.native_handle();
  int idle_s = 2, interval_s = 1, probes = 3, user_timeout_ms = 5000;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  // Written data unacknowledged this long also ends the connection.
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

bool SplitHostPort(const std::string& addr, std::string* host, std::string* port) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon + 1 == addr.size()) return false;
  *host = addr.substr(0, colon);
  *port = addr.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty();
}

// ---- Peer: one outgoing raft stream ----

PeerTransport::Peer::Peer(PeerTransport* t, NodeId id, std::string addr)
    : t_(t), id_(id), resolver_(t->io_), backoff_timer_(t->io_) {
  SetAddress(std::move(addr));
}

void PeerTransport::Peer::SetAddress(std::string addr) {
  std::lock_guard<std::mutex> l(mu_);
  if (addr == addr_ && channel_) return;
  addr_ = std::move(addr);
  if (t_->options_.channel_creds) {
    // Nodes' certificates all carry the name "node" (security/certs.h): any node of the
    // cluster is accepted whatever address it is reached by.
    grpc::ChannelArguments args = ChannelArgs();
    args.SetSslTargetNameOverride(security::kNodeName);
    channel_ = grpc::CreateCustomChannel(addr_, t_->options_.channel_creds, args);
  } else {
    channel_ = grpc::CreateCustomChannel(addr_, grpc::InsecureChannelCredentials(), ChannelArgs());
  }
  if (state_ == State::kIdle) return;
  // Reconnect to the new address. Frames not yet written are kept.
  asio::post(t_->io_, [this, gen = gen_] {
    std::lock_guard<std::mutex> l(mu_);
    if (gen != gen_ || stopped_) return;
    CloseLocked();
    state_ = State::kIdle;
    if (HasQueuedLocked()) ConnectLocked();
  });
}

std::shared_ptr<grpc::Channel> PeerTransport::Peer::channel() {
  std::lock_guard<std::mutex> l(mu_);
  return channel_;
}

RaftBatch PeerTransport::Peer::EnqueueUrgent(std::vector<raft::Message>& msgs) {
  RaftBatch urgent, bulk;
  for (RaftBatch* b : {&urgent, &bulk}) {
    b->set_from_node(t_->options_.node_id.value());
    b->set_from_addr(t_->options_.listen_addr);
    b->set_cluster_id(t_->options_.cluster_id);
    b->set_incarnation(t_->options_.incarnation);
    b->set_tick_ms(t_->options_.tick_ms);
    b->set_election_ticks(t_->options_.election_ticks);
  }
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return RaftBatch();
  size_t n = 0;
  for (auto& m : msgs) {
    if (QueuedMsgsLocked() + n >= t_->options_.max_queued_messages) {
      t_->dropped_++;
      continue;
    }
    RaftBatch* b = KeepsOrder(m) ? &bulk : &urgent;
    *b->add_msgs() = std::move(m);
    ++n;
  }
  if (urgent.msgs_size() > 0) {
    AppendFrame(&urgent_, kRaftBatchFrame, urgent);
    urgent_msgs_ += static_cast<size_t>(urgent.msgs_size());
    QueuedLocked(/*write_now=*/true);
  }
  return bulk;
}

void PeerTransport::Peer::EnqueueBulk(const RaftBatch& bulk) {
  const auto msgs = static_cast<size_t>(bulk.msgs_size());
  if (msgs == 0) return;
  Prepared frame = Prepare(kRaftBatchFrame, bulk);
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return;
  if (PushBulkLocked(std::move(frame), msgs)) QueuedLocked(/*write_now=*/true);
}

bool PeerTransport::Peer::EnqueueFrame(uint8_t type, const google::protobuf::MessageLite& payload,
                                       size_t weight, bool write_now) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_ || QueuedMsgsLocked() + weight > t_->options_.max_queued_messages) return false;
  if (!AppendBulkLocked(type, payload, weight)) return false;
  QueuedLocked(write_now);
  return true;
}

bool PeerTransport::Peer::AppendBulkLocked(uint8_t type,
                                           const google::protobuf::MessageLite& payload,
                                           size_t msgs) {
  return PushBulkLocked(Prepare(type, payload), msgs);
}

PeerTransport::Peer::Prepared PeerTransport::Peer::Prepare(
    uint8_t type, const google::protobuf::MessageLite& payload) {
  Prepared p;
  const size_t n = payload.ByteSizeLong();
  p.total = kHeaderBytes + n;
  if (n <= kFragmentBytes) {
    AppendFrameOfSize(&p.bytes, type, payload, n);
    return p;
  }
  // Long: serialized once into a buffer its fragments share (not zero-filled first: at
  // 100 MiB every extra pass over fresh memory costs page faults).
  std::shared_ptr<char[]> whole(new char[p.total]);
  WriteFrame(whole.get(), type, payload, n);
  p.whole = std::move(whole);
  return p;
}

bool PeerTransport::Peer::PushBulkLocked(Prepared frame, size_t msgs) {
  if (!bulk_.empty() && bulk_bytes_ + frame.total > t_->options_.max_queued_bytes) {
    t_->dropped_ += msgs;
    return false;
  }
  bulk_msgs_ += msgs;
  if (!frame.whole) {
    Queued q;
    q.bytes = std::move(frame.bytes);
    q.msgs = msgs;
    bulk_bytes_ += q.size();
    bulk_.push_back(std::move(q));
    return true;
  }
  for (size_t off = 0; off < frame.total; off += kFragmentBytes) {
    Queued f;
    f.whole = frame.whole;
    f.off = off;
    f.len = std::min(kFragmentBytes, frame.total - off);
    f.msgs = off + f.len == frame.total ? msgs : 0;
    bulk_bytes_ += f.size();
    bulk_.push_back(std::move(f));
  }
  return true;
}

size_t PeerTransport::Peer::ComposeLocked(std::string* out) {
  size_t msgs = urgent_msgs_;
  out->append(urgent_);
  urgent_.clear();
  urgent_msgs_ = 0;
  bool first = true;
  while (!bulk_.empty() && (first || out->size() < kWriteChunkBytes)) {
    const Queued& q = bulk_.front();
    if (q.whole) {
      char header[kHeaderBytes];
      EncodeFixed32(header, static_cast<uint32_t>(q.len));
      header[4] = static_cast<char>(kFragmentFrame);
      out->append(header, kHeaderBytes);
      out->append(q.whole.get() + q.off, q.len);
    } else {
      out->append(q.bytes);
    }
    msgs += q.msgs;
    bulk_msgs_ -= q.msgs;
    bulk_bytes_ -= q.size();
    bulk_.pop_front();
    first = false;
  }
  return msgs;
}

void PeerTransport::Peer::DropQueuedLocked() {
  t_->dropped_ += QueuedMsgsLocked();
  urgent_.clear();
  urgent_msgs_ = 0;
  bulk_.clear();
  bulk_msgs_ = 0;
  bulk_bytes_ = 0;
}

void PeerTransport::Peer::Stop() {
  std::lock_guard<std::mutex> l(mu_);
  stopped_ = true;
  CloseLocked();
  backoff_timer_.cancel();
}

// Any thread: something was queued.
void PeerTransport::Peer::QueuedLocked(bool write_now) {
  switch (state_) {
    case State::kConnected:
      if (writing_) break;  // the I/O thread takes it after the current write
      if (write_now) {
        WriteLocked();
      } else if (!flush_posted_) {
        flush_posted_ = true;
        asio::post(t_->io_, [this, gen = gen_] {
          std::lock_guard<std::mutex> l(mu_);
          flush_posted_ = false;
          if (gen == gen_ && state_ == State::kConnected && !writing_ && HasQueuedLocked()) {
            WriteLocked();
          }
        });
      }
      break;
    case State::kIdle:
      ConnectLocked();
      break;
    case State::kConnecting:
    case State::kBackoff:
      break;  // written once connected
  }
}

// Any thread. The socket is connected and free.
void PeerTransport::Peer::WriteLocked() {
  if (stream_->tls()) {
    // A TLS stream is written by the I/O thread only (OpenSSL's state is not shared).
    in_flight_msgs_ = ComposeLocked(&in_flight_);
    writing_ = true;
    asio::post(t_->io_, [this, gen = gen_] {
      std::lock_guard<std::mutex> l(mu_);
      if (gen == gen_) AsyncWriteLocked();
    });
    return;
  }
  // Write what the socket takes now, one chunk at a time (so that urgent frames queued
  // meanwhile go before the rest of a long bulk frame).
  while (HasQueuedLocked()) {
    // Only what this write takes: a chunk's worth for every small write made each
    // allocation a large one, which glibc serves by consolidating its free lists first.
    std::string out;
    out.reserve(urgent_.size() +
                std::min(bulk_bytes_, kWriteChunkBytes + kFragmentBytes + kHeaderBytes));
    const size_t msgs = ComposeLocked(&out);
    t_->socket_writes_.fetch_add(1, std::memory_order_relaxed);
    ssize_t n = ::send(stream_->socket().native_handle(), out.data(), out.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(out.size())) continue;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        // Broken: let the I/O thread fail the connection (it owns the socket's async state).
        t_->dropped_ += msgs;
        writing_ = true;
        asio::post(t_->io_, [this, gen = gen_] {
          std::unique_lock<std::mutex> l(mu_);
          if (gen == gen_) FailLocked(l);
        });
        return;
      }
      n = 0;
    }
    // The socket took only part: the I/O thread writes the rest when it can.
    out.erase(0, static_cast<size_t>(n));
    in_flight_ = std::move(out);
    in_flight_msgs_ = msgs;
    writing_ = true;
    asio::post(t_->io_, [this, gen = gen_] {
      std::lock_guard<std::mutex> l(mu_);
      if (gen == gen_) AsyncWriteLocked();
    });
    return;
  }
}

// I/O thread. Writes in_flight_, then whatever queued meanwhile, a chunk at a time.
void PeerTransport::Peer::AsyncWriteLocked() {
  t_->socket_writes_.fetch_add(1, std::memory_order_relaxed);
  asio::async_write(*stream_, asio::buffer(in_flight_),
                    [this, gen = gen_, s = stream_](const asio::error_code& ec, size_t) {
                      std::unique_lock<std::mutex> l(mu_);
                      if (gen != gen_) return;
                      if (ec) return FailLocked(l);
                      in_flight_.clear();
                      in_flight_msgs_ = 0;
                      if (!HasQueuedLocked()) {
                        writing_ = false;
                        return;
                      }
                      in_flight_msgs_ = ComposeLocked(&in_flight_);
                      AsyncWriteLocked();
                    });
}

// Any thread: starts connecting on the I/O thread.
void PeerTransport::Peer::ConnectLocked() {
  state_ = State::kConnecting;
  asio::post(t_->io_, [this, gen = gen_] {
    std::lock_guard<std::mutex> l(mu_);
    if (gen == gen_ && state_ == State::kConnecting && !stopped_) ResolveLocked();
  });
}

// I/O thread.
void PeerTransport::Peer::ResolveLocked() {
  std::string host, port;
  if (!SplitHostPort(addr_, &host, &port)) {
    Log()->warn("node {}: bad peer address '{}'", id_.value(), addr_);
    state_ = State::kIdle;
    return;
  }
  resolver_.async_resolve(
      host, port,
      [this, gen = gen_](const asio::error_code& ec, const tcp::resolver::results_type& r) {
        std::unique_lock<std::mutex> l(mu_);
        if (gen != gen_) return;
        if (ec) return FailLocked(l);
        tcp::socket socket(t_->io_);
        stream_ =
            t_->options_.tls_client
                ? std::make_shared<security::NetStream>(std::move(socket), *t_->options_.tls_client)
                : std::make_shared<security::NetStream>(std::move(socket));
        asio::async_connect(
            stream_->socket(), r,
            [this, gen, s = stream_](const asio::error_code& ec, const tcp::endpoint&) {
              std::unique_lock<std::mutex> l(mu_);
              if (gen != gen_) return;
              if (ec) return FailLocked(l);
              if (s->tls()) return HandshakeLocked();
              OnConnectedLocked();
            });
      });
}

// I/O thread.
void PeerTransport::Peer::HandshakeLocked() {
  stream_->tls_stream()->async_handshake(
      asio::ssl::stream_base::client, [this, gen = gen_, s = stream_](const asio::error_code& ec) {
        std::unique_lock<std::mutex> l(mu_);
        if (gen != gen_) return;
        if (ec) {
          Log()->warn("node {}: TLS handshake with {} failed: {}", id_.value(), addr_,
                      ec.message());
          return FailLocked(l);
        }
        // The CA signed it (verified in the handshake); it must also be a node's.
        const std::string name = security::PeerCommonName(s->ssl());
        if (name != security::kNodeName ||
            security::SelectedAlpn(s->ssl()) != security::kAlpnRaft) {
          Log()->error("node {}: {} presented a certificate for '{}', not a node's", id_.value(),
                       addr_, name);
          return FailLocked(l);
        }
        OnConnectedLocked();
      });
}

// I/O thread.
void PeerTransport::Peer::OnConnectedLocked() {
  SetStreamOptions(stream_->socket());
  state_ = State::kConnected;
  backoff_ms_ = kMinBackoffMs;
  // The receiver writes nothing but a refusal: any completion of this read means the stream
  // is over.
  asio::async_read(
      *stream_, asio::buffer(watch_buf_), asio::transfer_at_least(1),
      [this, gen = gen_, s = stream_](const asio::error_code&, size_t n) {
        std::unique_lock<std::mutex> l(mu_);
        if (gen != gen_) return;
        Refusal refusal;
        if (n >= kHeaderBytes && static_cast<uint8_t>(watch_buf_[4]) == kRefusalFrame) {
          const size_t len = std::min<size_t>(DecodeFixed32(watch_buf_), n - kHeaderBytes);
          if (!refusal.ParseFromArray(watch_buf_ + kHeaderBytes, static_cast<int>(len))) {
            refusal.Clear();
          }
        }
        FailLocked(l);
        if (!refusal.reason().empty()) {
          Log()->error("node {} refused this node: {}", id_.value(), refusal.reason());
          t_->handler_->OnRefused(id_, refusal.reason(), refusal.keep_running());
        }
      });
  in_flight_.assign(kMagic);
  in_flight_msgs_ = ComposeLocked(&in_flight_);
  writing_ = true;
  AsyncWriteLocked();
}

// I/O thread: the connection failed or broke. What was not written is dropped (raft
// resends), raft hears the node is unreachable, and a new connection is tried after a
// backoff once there is something to send.
void PeerTransport::Peer::FailLocked(std::unique_lock<std::mutex>& l) {
  if (stopped_) return;
  CloseLocked();
  DropQueuedLocked();
  state_ = State::kBackoff;
  backoff_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
  backoff_timer_.async_wait([this, gen = gen_](const asio::error_code& ec) {
    std::lock_guard<std::mutex> l(mu_);
    if (ec || gen != gen_ || state_ != State::kBackoff || stopped_) return;
    state_ = State::kIdle;
    if (HasQueuedLocked()) ConnectLocked();
  });
  l.unlock();
  t_->handler_->OnUnreachable(id_);
  t_->FailForwards(id_);
}

// Ends the current connection attempt; its pending completions become stale.
void PeerTransport::Peer::CloseLocked() {
  ++gen_;
  if (stream_) stream_->close();
  resolver_.cancel();
  t_->dropped_ += in_flight_msgs_;
  in_flight_.clear();
  in_flight_msgs_ = 0;
  writing_ = false;
}

// ---- Inbound: one incoming raft stream ----

PeerTransport::Inbound::Inbound(PeerTransport* t, security::NetStream stream)
    : t_(t), stream_(std::move(stream)), reader_(t->options_.max_frame_bytes) {}

void PeerTransport::Inbound::Close() { stream_.close(); }

void PeerTransport::Inbound::Read() {
  const std::span<char> space = reader_.Space();
  stream_.async_read_some(
      asio::buffer(space.data(), space.size()),
      [self = shared_from_this()](const asio::error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void PeerTransport::Inbound::OnRead(const asio::error_code& ec, size_t n) {
  if (ec) return;  // closed by the sender, or by StopListening
  reader_.Filled(n);
  std::vector<raft::Message> msgs;
  Frame frame;
  FrameReader::Next next;
  while ((next = reader_.Read(&frame)) == FrameReader::Next::kFrame) {
    if (!HandleFrame(frame, &msgs)) return Close();
  }
  if (next == FrameReader::Next::kBroken) {
    Log()->warn("raft stream: {}; closing", reader_.error());
    return Close();
  }
  // Everything that arrived in this read goes to the store as one task.
  if (!msgs.empty()) t_->handler_->OnMessages(std::move(msgs));
  Read();
}

bool PeerTransport::Inbound::HandleFrame(const Frame& frame, std::vector<raft::Message>* msgs) {
  FramePayload payload;
  if (Status s = DecodeFrame(frame, &payload); !s.ok()) {
    Log()->warn("raft stream: {}; closing", s.message());
    return false;
  }
  if (auto* batch = std::get_if<RaftBatch>(&payload)) {
    if (!Admit(batch->from_node(), batch->cluster_id(), batch->incarnation(), batch->tick_ms(),
               batch->election_ticks())) {
      return false;
    }
    LearnSender(batch->from_node(), batch->from_addr());
    for (auto& m : *batch->mutable_msgs()) msgs->push_back(std::move(m));
  } else if (auto* calls = std::get_if<ForwardCalls>(&payload)) {
    if (!Admit(calls->from_node(), calls->cluster_id(), calls->incarnation(), calls->tick_ms(),
               calls->election_ticks())) {
      return false;
    }
    LearnSender(calls->from_node(), calls->from_addr());
    for (auto& c : *calls->mutable_calls()) {
      t_->handler_->OnForward(NodeId(calls->from_node()), c.id(), std::move(*c.mutable_request()));
    }
  } else if (auto* replies = std::get_if<ForwardReplies>(&payload)) {
    t_->OnForwardReplies(std::move(*replies));
  }
  return true;
}

bool PeerTransport::Inbound::Admit(uint64_t node, uint64_t cluster_id, uint64_t incarnation,
                                   uint32_t tick_ms, uint32_t election_ticks) {
  if (admitted_) return true;
  std::optional<std::string> refused = TimingMismatch(t_->options_, node, tick_ms, election_ticks);
  const bool keep_running = refused.has_value();
  if (!refused && t_->options_.check_peer) {
    refused = t_->options_.check_peer(NodeId(node), cluster_id, incarnation);
  }
  if (!refused) {
    admitted_ = true;  // one sender per stream: checked once
    return true;
  }
  Log()->error("refused the raft stream of node {}: {}", node, *refused);
  Refusal r;
  r.set_reason(*refused);
  r.set_keep_running(keep_running);
  std::string out;
  AppendFrame(&out, kRefusalFrame, r);
  asio::error_code ignored;
  asio::write(stream_, asio::buffer(out), ignored);
  return false;
}

void PeerTransport::Inbound::LearnSender(uint64_t node, const std::string& addr) {
  if (learned_ || addr.empty()) return;
  t_->LearnAddress(NodeId(node), addr);
  learned_ = true;
}

}  // namespace micedb::transport
