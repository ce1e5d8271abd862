#include "transport/grpc_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include <fmt/format.h>
#include <grpcpp/server_posix.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/logging.h"
#include "store/snapshot_files.h"

namespace micedb::transport {

namespace fs = std::filesystem;
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
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 256 << 20);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 256 << 20);
  return args;
}

// The raft stream on the peer port (docs/transport.md): the 8-byte magic, then frames of a
// 4-byte little-endian payload length, a 1-byte frame type and the payload. The magic cannot
// be mistaken for the start of an HTTP/2 connection ("PRI * HTTP/2.0...").
constexpr std::string_view kMagic = "MICERAFT";
constexpr size_t kHeaderBytes = 5;
constexpr uint8_t kRaftBatchFrame = 1;       // payload: a serialized RaftBatch
constexpr uint8_t kForwardCallsFrame = 2;    // ForwardCalls
constexpr uint8_t kForwardRepliesFrame = 3;  // ForwardReplies

void AppendFrame(std::string* out, uint8_t type, const google::protobuf::MessageLite& msg) {
  const size_t n = msg.ByteSizeLong();
  const size_t at = out->size();
  out->resize(at + kHeaderBytes + n);
  char* p = out->data() + at;
  EncodeFixed32(p, static_cast<uint32_t>(n));
  p[4] = static_cast<char>(type);
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + kHeaderBytes));
}

// Both ends: no Nagle delay (a round's messages are written together already), and notice a
// peer that vanished without closing (power loss, partition) within seconds, as the gRPC
// keepalive settings above do for the other traffic.
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

// "host:port" or "[v6]:port".
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

}  // namespace

// ---- One destination: the outgoing raft stream ----
//
// All state is guarded by mu_. Callers of Enqueue (the raft loop) write to the socket
// themselves when nothing is being written; when the socket cannot take everything, the rest
// and whatever queues meanwhile are written by the I/O thread (writing_). Connecting,
// failures and reconnects happen on the I/O thread; every connection attempt gets a new
// generation, so that completions of an older one are ignored.
class GrpcTransport::Peer {
 public:
  Peer(GrpcTransport* t, NodeId id, std::string addr)
      : t_(t), id_(id), socket_(t->io_), resolver_(t->io_), backoff_timer_(t->io_) {
    SetAddress(std::move(addr));
  }

  void SetAddress(std::string addr) {
    std::lock_guard<std::mutex> l(mu_);
    if (addr == addr_ && channel_) return;
    addr_ = std::move(addr);
    channel_ = grpc::CreateCustomChannel(addr_, grpc::InsecureChannelCredentials(), ChannelArgs());
    if (state_ == State::kIdle) return;
    // Reconnect to the new address. Frames not yet written are kept.
    asio::post(t_->io_, [this, gen = gen_] {
      std::lock_guard<std::mutex> l(mu_);
      if (gen != gen_ || stopped_) return;
      CloseLocked();
      state_ = State::kIdle;
      if (!pending_.empty()) ConnectLocked();
    });
  }

  std::shared_ptr<grpc::Channel> channel() {
    std::lock_guard<std::mutex> l(mu_);
    return channel_;
  }

  // Queues the messages as one frame and writes it now if the socket is free.
  void Enqueue(std::vector<raft::Message>& msgs) {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_) return;
    RaftBatch batch;
    batch.set_from_node(t_->options_.node_id.value());
    batch.set_from_addr(t_->options_.listen_addr);
    size_t n = 0;
    for (auto& m : msgs) {
      if (pending_msgs_ + n >= t_->options_.max_queued_messages) {
        t_->dropped_++;
        continue;
      }
      *batch.add_msgs() = std::move(m);
      ++n;
    }
    if (n == 0) return;
    AppendFrame(&pending_, kRaftBatchFrame, batch);
    pending_msgs_ += n;
    QueuedLocked(/*write_now=*/true);
  }

  // Queues one frame that counts as `weight` messages against the queue's bound. With
  // write_now false the write is left to the I/O thread, so that frames queued in a burst
  // (answers to forwarded requests, from the raft loop) share one write. False when the
  // queue is full and the frame was dropped.
  bool EnqueueFrame(uint8_t type, const google::protobuf::MessageLite& payload, size_t weight,
                    bool write_now) {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_ || pending_msgs_ + weight > t_->options_.max_queued_messages) return false;
    AppendFrame(&pending_, type, payload);
    pending_msgs_ += weight;
    QueuedLocked(write_now);
    return true;
  }

  // Closes the stream for good. Call with the I/O thread stopped.
  void Stop() {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;
    CloseLocked();
    backoff_timer_.cancel();
  }

 private:
  enum class State { kIdle, kConnecting, kConnected, kBackoff };

  // Any thread: something was added to pending_.
  void QueuedLocked(bool write_now) {
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
            if (gen == gen_ && state_ == State::kConnected && !writing_ && !pending_.empty()) {
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
  void WriteLocked() {
    ssize_t n = ::send(socket_.native_handle(), pending_.data(), pending_.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(pending_.size())) {
      pending_.clear();
      pending_msgs_ = 0;
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        // Broken: let the I/O thread fail the connection (it owns the socket's async state).
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
    pending_.erase(0, static_cast<size_t>(n));
    in_flight_.swap(pending_);
    in_flight_msgs_ = pending_msgs_;
    pending_msgs_ = 0;
    writing_ = true;
    asio::post(t_->io_, [this, gen = gen_] {
      std::lock_guard<std::mutex> l(mu_);
      if (gen == gen_) AsyncWriteLocked();
    });
  }

  // I/O thread. Writes in_flight_, then whatever queued meanwhile.
  void AsyncWriteLocked() {
    asio::async_write(socket_, asio::buffer(in_flight_),
                      [this, gen = gen_](const asio::error_code& ec, size_t) {
                        std::unique_lock<std::mutex> l(mu_);
                        if (gen != gen_) return;
                        if (ec) return FailLocked(l);
                        in_flight_.clear();
                        in_flight_msgs_ = 0;
                        if (pending_.empty()) {
                          writing_ = false;
                          return;
                        }
                        in_flight_.swap(pending_);
                        in_flight_msgs_ = pending_msgs_;
                        pending_msgs_ = 0;
                        AsyncWriteLocked();
                      });
  }

  // Any thread: starts connecting on the I/O thread.
  void ConnectLocked() {
    state_ = State::kConnecting;
    asio::post(t_->io_, [this, gen = gen_] {
      std::lock_guard<std::mutex> l(mu_);
      if (gen == gen_ && state_ == State::kConnecting && !stopped_) ResolveLocked();
    });
  }

  // I/O thread.
  void ResolveLocked() {
    std::string host, port;
    if (!SplitHostPort(addr_, &host, &port)) {
      Log()->warn("node {}: bad peer address '{}'", id_.value(), addr_);
      state_ = State::kIdle;
      return;
    }
    resolver_.async_resolve(
        host, port, [this, gen = gen_](const asio::error_code& ec, tcp::resolver::results_type r) {
          std::unique_lock<std::mutex> l(mu_);
          if (gen != gen_) return;
          if (ec) return FailLocked(l);
          asio::async_connect(socket_, r,
                              [this, gen](const asio::error_code& ec, const tcp::endpoint&) {
                                std::unique_lock<std::mutex> l(mu_);
                                if (gen != gen_) return;
                                if (ec) return FailLocked(l);
                                OnConnectedLocked();
                              });
        });
  }

  // I/O thread.
  void OnConnectedLocked() {
    SetStreamOptions(socket_);
    state_ = State::kConnected;
    backoff_ms_ = kMinBackoffMs;
    // The receiver never writes: any completion of this read means the stream is over.
    socket_.async_read_some(asio::buffer(watch_byte_),
                            [this, gen = gen_](const asio::error_code&, size_t) {
                              std::unique_lock<std::mutex> l(mu_);
                              if (gen == gen_) FailLocked(l);
                            });
    in_flight_.assign(kMagic);
    in_flight_.append(pending_);
    in_flight_msgs_ = pending_msgs_;
    pending_.clear();
    pending_msgs_ = 0;
    writing_ = true;
    AsyncWriteLocked();
  }

  // I/O thread: the connection failed or broke. What was not written is dropped (raft
  // resends), raft hears the node is unreachable, and a new connection is tried after a
  // backoff once there is something to send.
  void FailLocked(std::unique_lock<std::mutex>& l) {
    if (stopped_) return;
    CloseLocked();
    t_->dropped_ += pending_msgs_;
    pending_.clear();
    pending_msgs_ = 0;
    state_ = State::kBackoff;
    backoff_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
    backoff_timer_.async_wait([this, gen = gen_](const asio::error_code& ec) {
      std::lock_guard<std::mutex> l(mu_);
      if (ec || gen != gen_ || state_ != State::kBackoff || stopped_) return;
      state_ = State::kIdle;
      if (!pending_.empty()) ConnectLocked();
    });
    l.unlock();
    t_->handler_->OnUnreachable(id_);
    t_->FailForwards(id_);
  }

  // Ends the current connection attempt; its pending completions become stale.
  void CloseLocked() {
    ++gen_;
    asio::error_code ignored;
    socket_.close(ignored);
    resolver_.cancel();
    t_->dropped_ += in_flight_msgs_;
    in_flight_.clear();
    in_flight_msgs_ = 0;
    writing_ = false;
  }

  static constexpr int kMinBackoffMs = 50;
  static constexpr int kMaxBackoffMs = 1000;

  GrpcTransport* const t_;
  const NodeId id_;
  std::mutex mu_;
  std::string addr_;
  std::shared_ptr<grpc::Channel> channel_;  // for snapshots and forwarding
  tcp::socket socket_;
  tcp::resolver resolver_;
  asio::steady_timer backoff_timer_;
  State state_ = State::kIdle;
  uint64_t gen_ = 0;
  bool writing_ = false;  // in_flight_ is being written by the I/O thread
  std::string pending_;   // frames not yet handed to the socket
  size_t pending_msgs_ = 0;
  std::string in_flight_;  // what the I/O thread is writing
  size_t in_flight_msgs_ = 0;
  int backoff_ms_ = kMinBackoffMs;
  bool flush_posted_ = false;  // a write of pending_ by the I/O thread is on its way
  bool stopped_ = false;
  char watch_byte_[1];
};

// ---- One incoming raft stream (I/O thread only) ----

class GrpcTransport::Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  Inbound(GrpcTransport* t, tcp::socket socket) : t_(t), socket_(std::move(socket)) {
    buf_.resize(64 << 10);
  }

  void Start() { Read(); }

  void Close() {
    asio::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void Read() {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (need_ > buf_.size()) buf_.resize(need_);
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
    socket_.async_read_some(
        asio::buffer(buf_.data() + end_, buf_.size() - end_),
        [self = shared_from_this()](const asio::error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const asio::error_code& ec, size_t n) {
    if (ec) return;  // closed by the sender, or by StopListening
    end_ += n;
    std::vector<raft::Message> msgs;
    need_ = 0;
    while (end_ - begin_ >= kHeaderBytes) {
      const char* p = buf_.data() + begin_;
      const size_t len = DecodeFixed32(p);
      const auto type = static_cast<uint8_t>(p[4]);
      if (len > t_->options_.max_frame_bytes) {
        Log()->warn("raft stream: frame of {} bytes is over the limit; closing", len);
        return Close();
      }
      if (end_ - begin_ - kHeaderBytes < len) {
        need_ = kHeaderBytes + len;
        break;
      }
      if (type == kRaftBatchFrame) {
        RaftBatch batch;
        if (!batch.ParseFromArray(p + kHeaderBytes, static_cast<int>(len))) {
          Log()->warn("raft stream: a batch does not parse; closing");
          return Close();
        }
        LearnSender(batch.from_node(), batch.from_addr());
        for (auto& m : *batch.mutable_msgs()) msgs.push_back(std::move(m));
      } else if (type == kForwardCallsFrame) {
        ForwardCalls calls;
        if (!calls.ParseFromArray(p + kHeaderBytes, static_cast<int>(len))) {
          Log()->warn("raft stream: forwarded calls do not parse; closing");
          return Close();
        }
        LearnSender(calls.from_node(), calls.from_addr());
        for (auto& c : *calls.mutable_calls()) {
          t_->handler_->OnForward(NodeId(calls.from_node()), c.id(),
                                  std::move(*c.mutable_request()));
        }
      } else if (type == kForwardRepliesFrame) {
        ForwardReplies replies;
        if (!replies.ParseFromArray(p + kHeaderBytes, static_cast<int>(len))) {
          Log()->warn("raft stream: forwarded replies do not parse; closing");
          return Close();
        }
        t_->OnForwardReplies(std::move(replies));
      }
      // Other frame types are for newer nodes; skip them.
      begin_ += kHeaderBytes + len;
    }
    if (begin_ == end_) begin_ = end_ = 0;
    // Everything that arrived in this read goes to the store as one task.
    if (!msgs.empty()) t_->handler_->OnMessages(std::move(msgs));
    Read();
  }

  // The first frame that names its sender's address teaches it (a node that just joined).
  void LearnSender(uint64_t node, const std::string& addr) {
    if (learned_ || addr.empty()) return;
    t_->LearnAddress(NodeId(node), addr);
    learned_ = true;
  }

  GrpcTransport* const t_;
  tcp::socket socket_;
  std::vector<char> buf_;
  size_t begin_ = 0;  // unparsed bytes are buf_[begin_, end_)
  size_t end_ = 0;
  size_t need_ = 0;  // bytes the incomplete frame at begin_ needs
  bool learned_ = false;
};

// ---- Receiving snapshots (gRPC) ----

class GrpcTransport::Service final : public RaftTransport::Service {
 public:
  explicit Service(GrpcTransport* t) : t_(t) {}

  grpc::Status SendSnapshot(grpc::ServerContext*, grpc::ServerReader<SnapshotChunk>* reader,
                            SnapshotDone* resp) override {
    std::string dir =
        (fs::path(t_->options_.snap_dir) / fmt::format("recv-{}-{}", ::getpid(), t_->snap_seq_++))
            .string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    auto fail = [&](const std::string& why) {
      Log()->warn("snapshot receive failed: {}", why);
      fs::remove_all(dir, ec);
      resp->set_ok(false);
      resp->set_error(why);
      return grpc::Status::OK;
    };
    if (ec) return fail(fmt::format("cannot create {}: {}", dir, ec.message()));
    std::map<std::pair<uint32_t, uint32_t>, std::ofstream> files;
    SnapshotChunk chunk;
    uint64_t bytes = 0;
    while (reader->Read(&chunk)) {
      if (!chunk.data().empty()) {
        if (crc32c::Unmask(chunk.crc32c()) != crc32c::Value(chunk.data())) {
          return fail(fmt::format("chunk of file {} at byte {} failed its checksum",
                                  chunk.file_index(), bytes));
        }
        auto key = std::make_pair(chunk.cf(), chunk.file_index());
        auto it = files.find(key);
        if (it == files.end()) {
          std::string path = store::SnapshotFilePath(dir, static_cast<storage::Cf>(chunk.cf()),
                                                     chunk.file_index());
          it = files.emplace(key, std::ofstream(path, std::ios::binary)).first;
        }
        it->second.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
        if (!it->second) return fail("write to the staging directory failed");
        bytes += chunk.data().size();
      }
      if (chunk.last()) {
        for (auto& [k, f] : files) {
          f.close();
          if (!f) return fail("closing a staged file failed");
        }
        Log()->info("received a snapshot of region {} from node {} ({} bytes)", chunk.region_id(),
                    chunk.from_node(), bytes);
        t_->handler_->OnSnapshot(chunk.msg(), dir);
        resp->set_ok(true);
        return grpc::Status::OK;
      }
    }
    return fail("the stream ended before the last chunk");
  }

 private:
  GrpcTransport* t_;
};

// ---- GrpcTransport ----

GrpcTransport::GrpcTransport(TransportOptions options, InboundHandler* handler)
    : options_(std::move(options)),
      handler_(handler),
      service_(std::make_unique<Service>(this)),
      work_(io_.get_executor()),
      acceptor_(io_),
      fwd_timer_(io_) {
  io_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "peer-io");
    io_.run();
  });
}

GrpcTransport::~GrpcTransport() { Shutdown(); }

grpc::Service* GrpcTransport::service() { return service_.get(); }

Status GrpcTransport::Listen(const std::string& addr, grpc::Server* grpc_server) {
  std::string host, port;
  if (!SplitHostPort(addr, &host, &port)) {
    return Status::InvalidArgument(fmt::format("bad peer address '{}'", addr));
  }
  asio::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec || endpoints.empty()) {
    return Status::IoError(fmt::format("cannot resolve it: {}", ec.message()));
  }
  const tcp::endpoint endpoint = *endpoints.begin();
  // The acceptor is not in use by the I/O thread until Accept is posted below.
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    asio::error_code ignored;
    acceptor_.close(ignored);
    return Status::IoError(ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  {
    std::lock_guard<std::mutex> l(mu_);
    grpc_server_ = grpc_server;
    listening_ = true;
  }
  asio::post(io_, [this] { Accept(); });
  return Status::OK();
}

void GrpcTransport::Accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors and the like: try again a little later rather than spin.
      Log()->warn("peer port: accept failed: {}", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      timer->async_wait([this, timer](const asio::error_code&) { Accept(); });
      return;
    }
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    // A connection that says nothing is closed after a while.
    auto deadline = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(10));
    deadline->async_wait([s](const asio::error_code& ec) {
      asio::error_code ignored;
      if (!ec) s->close(ignored);
    });
    Sort(s, deadline);
    Accept();
  });
}

void GrpcTransport::Sort(std::shared_ptr<tcp::socket> s,
                         std::shared_ptr<asio::steady_timer> deadline) {
  s->async_wait(tcp::socket::wait_read, [this, s, deadline](const asio::error_code& ec) {
    if (ec || !s->is_open()) return;
    char head[kMagic.size()];
    asio::error_code rec;
    const size_t n = s->receive(asio::buffer(head), tcp::socket::message_peek, rec);
    if (rec || n == 0) {  // closed before saying anything
      s->close(rec);
      deadline->cancel();
      return;
    }
    const bool ours = std::string_view(head, n) == kMagic.substr(0, n);
    if (ours && n < kMagic.size()) {
      // Only part of the magic has arrived; look again shortly (the socket stays readable,
      // so waiting for readability again would spin).
      auto later = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(1));
      later->async_wait([this, s, deadline, later](const asio::error_code&) { Sort(s, deadline); });
      return;
    }
    deadline->cancel();
    if (ours) {
      asio::read(*s, asio::buffer(head), rec);  // consume the magic
      if (rec) return;
      SetStreamOptions(*s);
      auto in = std::make_shared<Inbound>(this, std::move(*s));
      {
        std::lock_guard<std::mutex> l(mu_);
        if (!listening_) return;
        std::erase_if(inbound_, [](const std::weak_ptr<Inbound>& w) { return w.expired(); });
        inbound_.push_back(in);
      }
      in->Start();
      return;
    }
    // Anything else is for the gRPC server (HTTP/2), which takes over the descriptor.
    grpc::Server* server = nullptr;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (listening_) server = grpc_server_;
    }
    if (server == nullptr) {
      s->close(rec);
      return;
    }
    asio::error_code ignored;
    s->set_option(tcp::no_delay(true), ignored);
    const int fd = s->release(rec);
    if (rec) {
      s->close(ignored);
      return;
    }
    grpc::AddInsecureChannelFromFd(server, fd);
  });
}

void GrpcTransport::StopListening() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!listening_) return;
    listening_ = false;
  }
  // The acceptor and the incoming streams belong to the I/O thread.
  std::promise<void> done;
  asio::post(io_, [this, &done] {
    asio::error_code ignored;
    acceptor_.close(ignored);
    std::vector<std::weak_ptr<Inbound>> inbound;
    {
      std::lock_guard<std::mutex> l(mu_);
      inbound.swap(inbound_);
    }
    for (auto& w : inbound) {
      if (auto in = w.lock()) in->Close();
    }
    done.set_value();
  });
  done.get_future().wait();
}

void GrpcTransport::Shutdown() {
  if (shutdown_.exchange(true)) return;
  StopListening();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  std::map<NodeId, std::unique_ptr<Peer>> peers;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    peers.swap(peers_);
    threads.swap(snapshot_threads_);
  }
  for (auto& [id, p] : peers) p->Stop();
  peers.clear();
  for (auto& t : threads) t.join();
  std::map<uint64_t, PendingForward> forwards;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    forwards.swap(fwd_pending_);
  }
  for (auto& [id, f] : forwards) f.done(Status::Unavailable("node is stopping"));
}

GrpcTransport::Peer* GrpcTransport::GetPeer(NodeId id) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) return nullptr;
  auto it = peers_.find(id);
  if (it != peers_.end()) return it->second.get();
  auto addr = addresses_.find(id);
  if (addr == addresses_.end()) return nullptr;
  auto peer = std::make_unique<Peer>(this, id, addr->second);
  Peer* p = peer.get();
  peers_[id] = std::move(peer);
  return p;
}

void GrpcTransport::SetAddress(NodeId id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  addresses_[id] = addr;
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second->SetAddress(addr);
}

void GrpcTransport::LearnAddress(NodeId id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  if (addresses_.count(id) == 0) {
    Log()->info("learned the address of node {}: {}", id.value(), addr);
    addresses_[id] = addr;
  }
}

std::shared_ptr<grpc::Channel> GrpcTransport::ChannelTo(NodeId id) {
  Peer* p = GetPeer(id);
  return p ? p->channel() : nullptr;
}

void GrpcTransport::Send(raft::Message m) {
  std::vector<raft::Message> msgs;
  msgs.push_back(std::move(m));
  SendBatch(std::move(msgs));
}

void GrpcTransport::SendBatch(std::vector<raft::Message> msgs) {
  // One frame (and usually one write) per destination for everything a round of the raft
  // loop sends there: appends, heartbeats, read confirmations, of every region.
  std::map<uint64_t, std::vector<raft::Message>> by_node;
  for (auto& m : msgs) {
    uint64_t to = m.to();
    by_node[to].push_back(std::move(m));
  }
  for (auto& [to, batch] : by_node) {
    Peer* p = GetPeer(NodeId(to));
    if (!p) {
      dropped_ += batch.size();
      continue;
    }
    p->Enqueue(batch);
  }
}

void GrpcTransport::Forward(NodeId to, ForwardRequest request, std::chrono::milliseconds timeout,
                            ForwardCallback done) {
  Peer* p = GetPeer(to);
  if (p == nullptr) return done(Status::Unavailable("the node's address is unknown"));
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    id = fwd_next_id_++;
    fwd_pending_[id] =
        PendingForward{to, std::chrono::steady_clock::now() + timeout, std::move(done)};
    if (!fwd_timer_running_) {
      fwd_timer_running_ = true;
      asio::post(io_, [this] { ExpireForwards(); });
    }
  }
  ForwardCalls calls;
  calls.set_from_node(options_.node_id.value());
  calls.set_from_addr(options_.listen_addr);
  ForwardCall* call = calls.add_calls();
  call->set_id(id);
  *call->mutable_request() = std::move(request);
  // Written at once: requests come one at a time from client threads, and each waits.
  if (p->EnqueueFrame(kForwardCallsFrame, calls, 1, /*write_now=*/true)) return;
  ForwardCallback failed;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    auto it = fwd_pending_.find(id);
    if (it == fwd_pending_.end()) return;
    failed = std::move(it->second.done);
    fwd_pending_.erase(it);
  }
  failed(Status::Unavailable("too many messages queued for the node"));
}

void GrpcTransport::ReplyForward(NodeId to, uint64_t id, ForwardResponse response) {
  Peer* p = GetPeer(to);
  if (p == nullptr) return;  // the caller times out
  ForwardReplies replies;
  replies.set_from_node(options_.node_id.value());
  ForwardReply* r = replies.add_replies();
  r->set_id(id);
  *r->mutable_response() = std::move(response);
  // Answers come in bursts from the raft loop (one per request applied in a round): let the
  // I/O thread write them together rather than the loop once each.
  if (!p->EnqueueFrame(kForwardRepliesFrame, replies, 1, /*write_now=*/false)) dropped_++;
}

void GrpcTransport::OnForwardReplies(ForwardReplies replies) {
  std::vector<std::pair<ForwardCallback, ForwardResponse>> done;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    for (auto& r : *replies.mutable_replies()) {
      auto it = fwd_pending_.find(r.id());
      if (it == fwd_pending_.end()) continue;  // timed out already
      done.emplace_back(std::move(it->second.done), std::move(*r.mutable_response()));
      fwd_pending_.erase(it);
    }
  }
  for (auto& [cb, resp] : done) cb(std::move(resp));
}

void GrpcTransport::FailForwards(NodeId to) {
  std::vector<ForwardCallback> failed;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    for (auto it = fwd_pending_.begin(); it != fwd_pending_.end();) {
      if (it->second.to != to) {
        ++it;
        continue;
      }
      failed.push_back(std::move(it->second.done));
      it = fwd_pending_.erase(it);
    }
  }
  for (auto& cb : failed) {
    cb(Status::Unavailable("the connection to the node broke; the request may have run there"));
  }
}

void GrpcTransport::ExpireForwards() {
  // I/O thread: every 50 ms while requests wait, fails those past their deadline.
  std::vector<ForwardCallback> expired;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = fwd_pending_.begin(); it != fwd_pending_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->second.done));
      it = fwd_pending_.erase(it);
    }
    if (fwd_pending_.empty()) {
      fwd_timer_running_ = false;
    } else {
      fwd_timer_.expires_after(std::chrono::milliseconds(50));
      fwd_timer_.async_wait([this](const asio::error_code& ec) {
        if (!ec) return ExpireForwards();
        std::lock_guard<std::mutex> l(fwd_mu_);
        fwd_timer_running_ = false;
      });
    }
  }
  for (auto& cb : expired) cb(Status::TimedOut("no answer to the forwarded request in time"));
}

void GrpcTransport::SendSnapshot(raft::Message m, store::SnapshotSource source) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) return;
  snapshot_threads_.emplace_back([this, m = std::move(m), source = std::move(source)]() mutable {
    pthread_setname_np(pthread_self(), "snap-send");
    RunSnapshot(std::move(m), std::move(source));
  });
}

void GrpcTransport::RunSnapshot(raft::Message m, store::SnapshotSource source) {
  NodeId to(m.to());
  uint64_t region = m.region_id();
  std::string dir =
      (fs::path(options_.snap_dir) /
       fmt::format("send-{}-{}-{}", region, m.snapshot().metadata().index(), snap_seq_++))
          .string();
  auto report = [&](bool ok, const std::string& why) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!ok) Log()->warn("snapshot of region {} to node {} failed: {}", region, to.value(), why);
    handler_->OnSnapshotSent(region, to, ok);
  };
  auto files = store::ExportSnapshotFiles(source, dir);
  source.snapshot.reset();
  if (!files.ok()) return report(false, files.status().ToString());
  auto channel = ChannelTo(to);
  if (!channel) return report(false, "no address");
  auto stub = RaftTransport::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  SnapshotDone done;
  auto writer = stub->SendSnapshot(&ctx, &done);
  std::string buf(options_.snapshot_chunk_bytes, '\0');
  uint64_t bytes = 0;
  for (size_t i = 0; i < files->size(); ++i) {
    const auto& [cf, path] = (*files)[i];
    std::ifstream in(path, std::ios::binary);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      std::streamsize n = in.gcount();
      if (n <= 0) break;
      SnapshotChunk chunk;
      chunk.set_from_node(options_.node_id.value());
      chunk.set_region_id(region);
      chunk.set_cf(static_cast<uint32_t>(cf));
      chunk.set_file_index(0);
      chunk.set_data(buf.data(), static_cast<size_t>(n));
      chunk.set_crc32c(crc32c::Mask(crc32c::Value(chunk.data())));
      if (!writer->Write(chunk)) return report(false, "stream broke");
      bytes += static_cast<uint64_t>(n);
    }
  }
  SnapshotChunk last;
  last.set_from_node(options_.node_id.value());
  last.set_region_id(region);
  last.set_last(true);
  *last.mutable_msg() = m;
  if (!writer->Write(last)) return report(false, "stream broke");
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return report(false, st.error_message());
  if (!done.ok()) return report(false, done.error());
  Log()->info("sent a snapshot of region {} at index {} to node {} ({} bytes)", region,
              m.snapshot().metadata().index(), to.value(), bytes);
  report(true, "");
}

}  // namespace micedb::transport
