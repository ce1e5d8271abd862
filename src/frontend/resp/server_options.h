// ServerOptions: the settings of the RESP server (frontend/resp/resp_server.h). Every limit has a
// safe default; the micedb command maps them to flags. See docs/resp.md for what a client sees when
// it crosses one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"

namespace asio::ssl {
class context;
}

namespace micedb::resp {

struct ServerOptions {
  // Address to listen on; port 0 picks a free port (RespServer::port() tells which).
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  // A second port that serves the same protocol over TLS (Redis's tls-port), with `tls` (a
  // server context, security/tls.h; it decides whether clients need certificates). Port 0
  // with a context picks a free port; no context: no TLS port.
  std::string tls_host = "127.0.0.1";
  uint16_t tls_port = 0;
  std::shared_ptr<asio::ssl::context> tls;
  // Threads running connection I/O.
  int io_threads = 1;

  // Longest key; a longer one gets "-ERR key too large" (the connection stays open).
  size_t max_key_bytes = size_t{64} << 10;
  // Longest value, and so the longest argument the parser accepts: an announced bulk length
  // above max(max_key_bytes, max_value_bytes) gets "-ERR Protocol error: invalid bulk length"
  // and the connection is closed.
  size_t max_value_bytes = size_t{64} << 20;
  // Sum of the argument lengths of one command ("Protocol error: request too large", close).
  // One request is one raft entry; this keeps it well below what replication carries (a
  // frame of 256 MiB).
  size_t max_request_bytes = size_t{128} << 20;
  // Most arguments in one command ("Protocol error: invalid multibulk length", close).
  size_t max_multibulk_len = size_t{1} << 20;
  // Longest inline command line ("Protocol error: too big inline request", close).
  size_t max_inline_bytes = size_t{64} << 10;
  // Open connections; one more gets "-ERR max number of clients reached" and is closed.
  size_t max_connections = 10000;
  // A request that has begun arriving but is not complete after this long, or a reply the
  // client does not read for this long, closes the connection (slow clients). 0: never.
  std::chrono::milliseconds request_timeout{30000};
  // A connection with no request at all for this long is closed. 0: never (as in Redis).
  std::chrono::milliseconds idle_timeout{0};
  // Commands queued in one MULTI; past that, the transaction is failed (EXECABORT).
  size_t max_queued_commands = 100000;
  // Sum of the argument lengths of the commands queued in one MULTI (one raft entry); past
  // that, the transaction is failed (EXECABORT). Pipelined runs are cut to stay below it.
  size_t max_txn_bytes = size_t{128} << 20;
  // Keys one connection may WATCH.
  size_t max_watched_keys = 10000;
  // SCAN cursors remembered per connection; the oldest are forgotten first.
  size_t max_scan_cursors = 64;
  // Replies buffered before they are sent while a pipeline is being worked through.
  size_t max_pending_reply_bytes = size_t{64} << 10;

  // When set, clients must AUTH (or HELLO ... AUTH) with this password first.
  std::string password;

  // Wall and monotonic time (not owned; SystemClock when null).
  const Clock* clock = nullptr;
  // The body of INFO's replication section ("key:value" lines, each ending in "\r\n"). The
  // store provides the raft role and peers; when unset: "role:master\r\nconnected_slaves:0\r\n".
  // Called on an I/O thread; must be thread-safe and quick.
  std::function<std::string()> replication_info;
};

}  // namespace micedb::resp
