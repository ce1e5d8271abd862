#include "frontend/resp/resp_server.h"

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/logging.h"
#include "frontend/resp/client_registry.h"
#include "frontend/resp/resp_command_table.h"
#include "frontend/resp/resp_connection.h"
#include "frontend/resp/resp_handlers.h"

namespace micedb::resp {
namespace {

std::string Endpoint(const asio::ip::tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

struct RespServer::Impl {
  Impl(ServerOptions opts, kv::KvBackend* b)
      : options(std::move(opts)),
        backend(b),
        clock(options.clock != nullptr ? options.clock : SystemClock::Get()),
        acceptor(asio::make_strand(io)),
        tls_acceptor(asio::make_strand(io)),
        stats(CommandTable().size()),
        clients(options.max_connections) {
    context.options = &options;
    context.clock = clock;
    context.stats = &stats;
    context.clients = &clients;
  }

  // Accepts on `acc`; with `tls`, connections are TLS with that context.
  asio::awaitable<void> AcceptLoop(asio::ip::tcp::acceptor& acc, asio::ssl::context* tls);
  Status Listen(asio::ip::tcp::acceptor& acc, const std::string& host, uint16_t port);
  asio::awaitable<void> Reject(asio::ip::tcp::socket socket);

  const ServerOptions options;
  kv::KvBackend* const backend;
  const Clock* const clock;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::ip::tcp::acceptor acceptor;
  asio::ip::tcp::acceptor tls_acceptor;  // open when options.tls is set
  ServerStats stats;
  ClientRegistry clients;
  ServerContext context;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<uint16_t> port{0};
  std::atomic<uint16_t> tls_port{0};
  bool started = false;
};

asio::awaitable<void> RespServer::Impl::Reject(asio::ip::tcp::socket socket) {
  static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
  asio::error_code ec;
  co_await asio::async_write(socket, asio::buffer(kFull.data(), kFull.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

asio::awaitable<void> RespServer::Impl::AcceptLoop(asio::ip::tcp::acceptor& acc,
                                                   asio::ssl::context* tls) {
  asio::steady_timer backoff(io);
  while (!stopping.load()) {
    asio::ip::tcp::socket socket(asio::make_strand(io));
    asio::error_code ec;
    co_await acc.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (stopping.load() || ec == asio::error::operation_aborted) break;
    if (ec) {
      // Out of file descriptors and the like: wait a little rather than spin.
      GetLogger("kv")->warn("resp accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    stats.connections_received.fetch_add(1, std::memory_order_relaxed);
    // Only this loop registers clients, so the count cannot grow between here and Register.
    if (clients.size() >= clients.max_clients()) {
      stats.rejected_connections.fetch_add(1, std::memory_order_relaxed);
      auto executor = socket.get_executor();
      asio::co_spawn(executor, Reject(std::move(socket)), asio::detached);
      continue;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    ClientInfo info;
    asio::error_code addr_ec;
    const auto remote = socket.remote_endpoint(addr_ec);
    if (!addr_ec) info.addr = Endpoint(remote);
    const auto local = socket.local_endpoint(addr_ec);
    if (!addr_ec) info.laddr = Endpoint(local);
    info.created_ms = clock->NowWallMillis();
    info.last_active_ms = info.created_ms;
    auto connection = std::make_shared<RespConnection>(
        tls != nullptr ? security::NetStream(std::move(socket), *tls)
                       : security::NetStream(std::move(socket)),
        &context, backend);
    std::weak_ptr<RespConnection> weak = connection;
    auto client = clients.Register(std::move(info), [weak] {
      if (auto c = weak.lock()) c->Kill();
    });
    if (client == nullptr) {  // cannot happen (see above), but never serve past the limit
      stats.rejected_connections.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    connection->Start(std::move(client));
    // Stop() may have listed the clients just before this one registered.
    if (stopping.load()) connection->Kill();
  }
}

RespServer::RespServer(ServerOptions options, kv::KvBackend* backend)
    : impl_(std::make_unique<Impl>(std::move(options), backend)) {}

RespServer::~RespServer() { Stop(); }

Status RespServer::Impl::Listen(asio::ip::tcp::acceptor& acc, const std::string& host,
                                uint16_t port) {
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument(fmt::format("bad listen host '{}'", host));
  const asio::ip::tcp::endpoint endpoint(address, port);
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    asio::error_code ignored;
    acc.close(ignored);
    return Status::IoError(fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()));
  }
  return Status::OK();
}

Status RespServer::Start() {
  Impl& s = *impl_;
  if (s.started) return Status::AlreadyExists("resp server already started");
  MICEDB_RETURN_IF_ERROR(s.Listen(s.acceptor, s.options.host, s.options.port));
  asio::error_code ec;
  if (s.options.tls) {
    if (Status st = s.Listen(s.tls_acceptor, s.options.tls_host, s.options.tls_port); !st.ok()) {
      s.acceptor.close(ec);
      return st;
    }
    s.tls_port = s.tls_acceptor.local_endpoint(ec).port();
  }
  s.port = s.acceptor.local_endpoint(ec).port();
  s.context.port = s.port;
  s.context.start_wall_ms = s.clock->NowWallMillis();
  s.started = true;
  s.work.emplace(s.io.get_executor());
  asio::co_spawn(s.acceptor.get_executor(), s.AcceptLoop(s.acceptor, nullptr), asio::detached);
  if (s.options.tls) {
    asio::co_spawn(s.tls_acceptor.get_executor(), s.AcceptLoop(s.tls_acceptor, s.options.tls.get()),
                   asio::detached);
  }
  const int threads = std::max(1, s.options.io_threads);
  for (int i = 0; i < threads; ++i) {
    s.threads.emplace_back([&s] {
      pthread_setname_np(pthread_self(), "resp-io");
      s.io.run();
    });
  }
  return Status::OK();
}

uint16_t RespServer::port() const { return impl_->port; }

uint16_t RespServer::tls_port() const { return impl_->tls_port; }

const ServerStats& RespServer::stats() const { return impl_->stats; }

void RespServer::Stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopping.exchange(true)) {
    return;
  }
  asio::post(s.acceptor.get_executor(), [&s] {
    asio::error_code ignored;
    s.acceptor.close(ignored);
  });
  asio::post(s.tls_acceptor.get_executor(), [&s] {
    asio::error_code ignored;
    s.tls_acceptor.close(ignored);
  });
  s.clients.KillAll();
  s.work.reset();
  for (std::thread& t : s.threads) {
    t.join();
  }
  s.threads.clear();
  // Backend callbacks may still be finishing on other threads (their completions have run);
  // the io_context they reference must outlive them.
  while (s.stats.backend_inflight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace micedb::resp
