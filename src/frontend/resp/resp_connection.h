// Internal to src/frontend/resp: one client connection of the RESP server, run as a coroutine on
// its own strand. It reads, parses, dispatches, awaits the backend and writes; a second coroutine
// (the watchdog) closes the connection when a request or a reply takes longer than the
// request timeout, or when the connection has been idle longer than the idle timeout.
#pragma once

#include <asio.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "frontend/resp/client_registry.h"
#include "frontend/resp/resp_handlers.h"
#include "frontend/resp/resp_parser.h"
#include "frontend/resp/resp_session.h"
#include "kv/backend.h"
#include "security/net_stream.h"

namespace micedb::resp {

class RespConnection : public std::enable_shared_from_this<RespConnection> {
 public:
  // `server` and `backend` must outlive the connection's coroutines (RespServer::Stop waits
  // for them).
  // `stream` is plain or TLS; a TLS stream's handshake is done first, under the request
  // timeout.
  RespConnection(security::NetStream stream, ServerContext* server, kv::KvBackend* backend);

  // Takes the registry entry made for this connection and starts the coroutines. The entry
  // is unregistered when the connection ends.
  void Start(std::shared_ptr<ClientRegistry::Client> client);

  // Closes the connection from any thread.
  void Kill();

 private:
  using Clock = std::chrono::steady_clock;

  asio::awaitable<void> Run();
  asio::awaitable<void> Watchdog();
  // A command dispatched (its session effects done), waiting for its reply to be written.
  struct Dispatched {
    const CommandSpec* spec = nullptr;
    Plan plan;
    std::chrono::nanoseconds started{0};  // monotonic, for the latency statistics
    int64_t now_ms = 0;
  };
  Dispatched Dispatch(std::vector<std::string>& args);
  // Writes the reply of `d` (rendered from `result` when it ran on the backend) and counts it.
  void Complete(Dispatched& d, const Result<kv::CommandResult>* result);
  asio::awaitable<void> RunCommand(std::vector<std::string>& args);
  // True when `spec` may join a run of pipelined data commands (see RunPipelined).
  bool Pipelinable(const CommandSpec* spec) const;
  // Runs the commands gathered in run_ and writes their replies, in order; empties run_.
  asio::awaitable<void> RunPipelined();
  // Sends the pending replies. False when the connection is (now) closed.
  asio::awaitable<bool> Flush();
  void SetDeadline(Clock::time_point deadline);
  void Close();
  void PublishInfo(const CommandSpec* spec, int64_t now_ms);

  security::NetStream stream_;
  asio::ip::tcp::socket& socket_;  // stream_'s TCP socket
  asio::steady_timer timer_;
  ServerContext* const server_;
  kv::KvBackend* const backend_;
  std::shared_ptr<ClientRegistry::Client> client_;

  RespParser parser_;
  Session session_;
  std::string out_;              // replies not yet written
  std::vector<Dispatched> run_;  // pipelined data commands not yet run
  size_t run_bytes_ = 0;         // their arguments' size
  bool closed_ = false;
  bool timed_out_ = false;
};

}  // namespace micedb::resp
