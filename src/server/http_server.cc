#include "server/http_server.h"

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include <fmt/format.h>

namespace micedb::server {

namespace {

constexpr size_t kMaxHead = 16 * 1024;
// How long a HandleAsync handler may take to call its reply.
constexpr std::chrono::seconds kAsyncReplyTimeout(10);

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  std::map<std::string, HttpHandler> handlers;
  std::map<std::string, HttpAsyncHandler> async_handlers;
  // Replies of async handlers post to `io` only while the server lives (Stop clears it).
  struct Life {
    std::mutex mu;
    bool alive = true;
  };
  std::shared_ptr<Life> life = std::make_shared<Life>();
  std::thread thread;
  std::atomic<size_t> connections{0};
  size_t max_connections = 256;

  asio::awaitable<HttpResponse> Dispatch(const std::string& target) {
    std::string path = target, query;
    if (auto q = target.find('?'); q != std::string::npos) {
      path = target.substr(0, q);
      query = target.substr(q + 1);
    }
    if (auto it = handlers.find(path); it != handlers.end()) co_return it->second(query);
    auto async = async_handlers.find(path);
    if (async == async_handlers.end()) {
      co_return HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
    }
    // Wait on a timer that the reply cancels (on this thread, through a post).
    struct Pending {
      // A handler that never answers (its callback dropped at a shutdown) must not hold the
      // connection for ever: the wait ends with a 504 after kAsyncReplyTimeout.
      explicit Pending(asio::io_context& io) : timer(io, kAsyncReplyTimeout) {}
      asio::steady_timer timer;
      std::optional<HttpResponse> resp;
    };
    auto pending = std::make_shared<Pending>(io);
    // The reply holds the wait weakly: the timer must not outlive the io_context, and the
    // reply may come after the server is gone.
    std::weak_ptr<Pending> weak = pending;
    async->second(query, [weak, life = life, &io = io](HttpResponse r) {
      std::lock_guard lock(life->mu);
      if (!life->alive) return;
      asio::post(io, [weak, r = std::move(r)]() mutable {
        if (auto p = weak.lock()) {
          p->resp = std::move(r);
          p->timer.cancel();
        }
      });
    });
    std::error_code ec;
    co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!pending->resp) {
      co_return HttpResponse{504, "text/plain; charset=utf-8", "no answer in time\n"};
    }
    co_return std::move(*pending->resp);
  }

  asio::awaitable<void> Serve(asio::ip::tcp::socket sock) {
    struct Guard {
      std::atomic<size_t>& n;
      ~Guard() { n--; }
    } guard{connections};
    std::string buf;
    asio::steady_timer deadline(co_await asio::this_coro::executor);
    try {
      while (true) {
        // Whoever is slow to send a complete head loses the connection.
        deadline.expires_after(std::chrono::seconds(10));
        deadline.async_wait([&sock](std::error_code ec) {
          if (!ec) sock.close();
        });
        size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf, kMaxHead),
                                                   "\r\n\r\n", asio::use_awaitable);
        deadline.cancel();
        std::string head = buf.substr(0, n);
        buf.erase(0, n);
        auto line_end = head.find("\r\n");
        std::string line = head.substr(0, line_end);
        auto sp1 = line.find(' ');
        auto sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
        HttpResponse resp;
        bool head_only = false;
        if (sp1 == std::string::npos || sp2 == std::string::npos) {
          resp = HttpResponse{400, "text/plain; charset=utf-8", "bad request line\n"};
        } else {
          std::string method = line.substr(0, sp1);
          std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
          head_only = method == "HEAD";
          if (method != "GET" && method != "HEAD") {
            resp = HttpResponse{405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
          } else {
            resp = co_await Dispatch(target);
          }
        }
        bool close =
            resp.status >= 400 && resp.status != 404 && resp.status != 503 && resp.status != 504;
        std::string out = fmt::format(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
            "Cache-Control: no-store\r\n{}\r\n",
            resp.status, Reason(resp.status), resp.content_type, resp.body.size(),
            close ? "Connection: close\r\n" : "");
        if (!head_only) out += resp.body;
        co_await asio::async_write(sock, asio::buffer(out), asio::use_awaitable);
        if (close) break;
      }
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::not_found) {
        // The head outgrew its limit.
        std::string out =
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n";
        std::error_code ignored;
        asio::write(sock, asio::buffer(out), ignored);
      }
    }
    std::error_code ignored;
    sock.close(ignored);
  }

  asio::awaitable<void> Accept() {
    while (acceptor.is_open()) {
      std::error_code ec;
      auto sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) break;
        continue;
      }
      if (connections.load() >= max_connections) {
        std::string out =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        asio::write(sock, asio::buffer(out), ec);
        continue;
      }
      connections++;
      asio::co_spawn(io, Serve(std::move(sock)), asio::detached);
    }
  }
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& path, HttpHandler handler) {
  impl_->handlers[path] = std::move(handler);
}

void HttpServer::HandleAsync(const std::string& path, HttpAsyncHandler handler) {
  impl_->async_handlers[path] = std::move(handler);
}

Status HttpServer::Start(const std::string& host, uint16_t port, size_t max_connections) {
  impl_->max_connections = max_connections;
  std::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Status::InvalidArgument(fmt::format("bad HTTP address {}", host));
  asio::ip::tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IoError(
        fmt::format("cannot listen for HTTP on {}:{}: {}", host, port, ec.message()));
  }
  asio::co_spawn(impl_->io, impl_->Accept(), asio::detached);
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "http");
    impl_->io.run();
  });
  return Status::OK();
}

uint16_t HttpServer::port() const {
  std::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void HttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard lock(impl_->life->mu);
    impl_->life->alive = false;
  }
  asio::post(impl_->io, [this] {
    std::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace micedb::server
