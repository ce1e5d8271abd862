// PeerTransport: lifecycle, the peer port (accepting connections and sorting them by their
// first bytes), addresses, and handing raft messages to the outgoing streams.
#include "transport/peer_transport.h"

#include <chrono>
#include <future>
#include <utility>

#include <fmt/format.h>
#include <grpcpp/server_posix.h>

#include "common/logging.h"
#include "transport/raft_stream.h"
#include "transport/snapshot_stream.h"

namespace micedb::transport {

std::optional<std::string> TimingMismatch(const TransportOptions& ours, uint64_t node,
                                          uint32_t tick_ms, uint32_t election_ticks) {
  if (ours.tick_ms == 0 || (tick_ms == ours.tick_ms && election_ticks == ours.election_ticks)) {
    return std::nullopt;
  }
  return fmt::format(
      "node {} runs --raft-tick-ms={} --election-ticks={}, node {} runs --raft-tick-ms={} "
      "--election-ticks={}: every node must run the same values (leader leases count on "
      "them); restart the node that differs with the cluster's values",
      node, tick_ms, election_ticks, ours.node_id.value(), ours.tick_ms, ours.election_ticks);
}

using asio::ip::tcp;

namespace {
spdlog::logger* Log() { return GetLogger("transport"); }
}  // namespace

PeerTransport::PeerTransport(TransportOptions options, InboundHandler* handler)
    : options_(std::move(options)),
      handler_(handler),
      service_(std::make_unique<SnapshotService>(this)),
      work_(io_.get_executor()),
      acceptor_(io_),
      fwd_timer_(io_) {
  io_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "peer-io");
    io_.run();
  });
}

PeerTransport::~PeerTransport() { Shutdown(); }

grpc::Service* PeerTransport::service() { return service_.get(); }

Status PeerTransport::Listen(const std::string& addr, grpc::Server* grpc_server) {
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

void PeerTransport::Accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors and the like: try again a little later rather than spin.
      Log()->warn("peer port: accept failed: {}", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
      timer->async_wait([this, timer](const asio::error_code&) { Accept(); });
      return;
    }
    if (options_.tls_server) {
      Secure(std::move(socket));
      Accept();
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

void PeerTransport::Sort(const std::shared_ptr<tcp::socket>& s,
                         const std::shared_ptr<asio::steady_timer>& deadline) {
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
      StartInbound(security::NetStream(std::move(*s)));
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

void PeerTransport::StartInbound(security::NetStream stream) {
  SetStreamOptions(stream.socket());
  auto in = std::make_shared<Inbound>(this, std::move(stream));
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!listening_) return;
    std::erase_if(inbound_, [](const std::weak_ptr<Inbound>& w) { return w.expired(); });
    if (inbound_.size() >= options_.max_inbound_streams) {
      Log()->warn("raft stream refused: {} are open already (the limit)", inbound_.size());
      in->Close();
      return;
    }
    inbound_.push_back(in);
  }
  in->Start();
}

void PeerTransport::StopListening() {
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

void PeerTransport::Shutdown() {
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

PeerTransport::Peer* PeerTransport::GetPeer(NodeId id) {
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

void PeerTransport::SetAddress(NodeId id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  addresses_[id] = addr;
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second->SetAddress(addr);
}

void PeerTransport::LearnAddress(NodeId id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  if (addresses_.count(id) == 0) {
    Log()->info("learned the address of node {}: {}", id.value(), addr);
    addresses_[id] = addr;
  }
}

std::shared_ptr<grpc::Channel> PeerTransport::ChannelTo(NodeId id) {
  Peer* p = GetPeer(id);
  return p ? p->channel() : nullptr;
}

void PeerTransport::Send(raft::Message m) {
  std::vector<raft::Message> msgs;
  msgs.push_back(std::move(m));
  SendBatch(std::move(msgs));
}

void PeerTransport::SendBatch(std::vector<raft::Message> msgs) {
  // One frame (and usually one write) per destination for everything a round of the raft
  // loop sends there: appends, heartbeats, read confirmations, of every region.
  messages_sent_.fetch_add(msgs.size(), std::memory_order_relaxed);
  std::map<uint64_t, std::vector<raft::Message>> by_node;
  for (auto& m : msgs) {
    uint64_t to = m.to();
    by_node[to].push_back(std::move(m));
  }
  // Every destination's heartbeats and votes leave before any big append is serialized.
  std::vector<std::pair<Peer*, RaftBatch>> bulk;
  for (auto& [to, batch] : by_node) {
    Peer* p = GetPeer(NodeId(to));
    if (!p) {
      dropped_ += batch.size();
      continue;
    }
    RaftBatch rest = p->EnqueueUrgent(batch);
    if (rest.msgs_size() > 0) bulk.emplace_back(p, std::move(rest));
  }
  for (auto& [p, rest] : bulk) p->EnqueueBulk(rest);
}

}  // namespace micedb::transport
