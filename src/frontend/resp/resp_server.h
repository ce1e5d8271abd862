// RespServer: the Redis-protocol front end (RESP2 and RESP3) of the raw key-value keyspace.
// It accepts connections, parses requests, answers connection-level commands itself and turns
// data commands into kv Commands for a KvBackend, awaiting each result without blocking an I/O
// thread. Commands from one connection run one after another, in order; pipelined requests
// are answered in one write. What is supported, and how it differs from Redis, is in
// docs/resp.md.
//
//   resp::ServerOptions options;
//   options.port = 6379;
//   resp::RespServer server(options, backend);   // backend outlives the server
//   MICEDB_RETURN_IF_ERROR(server.Start());    // serves on its own I/O threads
//   ...
//   server.Stop();                             // or let the destructor do it
//
// Bad input never takes the server down: a malformed or oversized request gets a
// "-ERR Protocol error: ..." reply and that connection is closed; other clients carry on.
//
// Thread-safety: Start and Stop must not run concurrently with each other; port() and
// stats() may be called from any thread once Start has returned.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "frontend/resp/server_options.h"
#include "frontend/resp/server_stats.h"
#include "kv/backend.h"

namespace micedb::resp {

class RespServer {
 public:
  // `backend` is not owned and must outlive the server (it may still be called back until
  // Stop returns).
  RespServer(ServerOptions options, kv::KvBackend* backend);
  ~RespServer();  // calls Stop()

  RespServer(const RespServer&) = delete;
  RespServer& operator=(const RespServer&) = delete;

  // Binds options.host:options.port and starts options.io_threads I/O threads.
  // InvalidArgument for an unparsable host; IoError when the address cannot be bound;
  // AlreadyExists when already started.
  Status Start();

  // The port actually bound (useful with port 0). 0 before Start.
  uint16_t port() const;
  // The TLS port (ServerOptions::tls_port), 0 when there is none.
  uint16_t tls_port() const;

  // Stops accepting, closes every connection, waits for commands in flight to finish and
  // for the I/O threads to exit. Idempotent.
  void Stop();

  const ServerStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micedb::resp
