// A small HTTP/1.1 server for operators: /metrics, /healthz, /readyz, /debug/... and the web
// console. GET and HEAD only; one request per connection turn, keep-alive supported.
//
// Limits: request head <= 16 KiB, 10 s to send a complete head, at most `max_connections`
// at once. Anything else gets a 4xx reply and the connection is closed.
//
// Thread-safety: Start/Stop from one thread; handlers run on the server's I/O thread and must
// be quick and thread-safe with respect to the rest of the program (one that waits on
// something else is registered with HandleAsync).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"

namespace micedb::server {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Handler for one path; `query` is the text after '?', if any.
using HttpHandler = std::function<HttpResponse(const std::string& query)>;
// A handler that answers later: it calls `reply` once, from any thread (the connection waits;
// the server's thread serves other connections meanwhile). A reply after Stop is dropped; one
// that does not come within 10 s is answered 504 for it.
using HttpReply = std::function<void(HttpResponse)>;
using HttpAsyncHandler = std::function<void(const std::string& query, HttpReply reply)>;

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();

  // Registers a handler for an exact path. Call before Start.
  void Handle(const std::string& path, HttpHandler handler);
  void HandleAsync(const std::string& path, HttpAsyncHandler handler);

  // Binds host:port (port 0 picks a free one) and serves on its own thread. IoError naming
  // the address when it cannot bind.
  Status Start(const std::string& host, uint16_t port, size_t max_connections = 256);
  uint16_t port() const;
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micedb::server
