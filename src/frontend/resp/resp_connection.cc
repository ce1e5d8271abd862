#include "frontend/resp/resp_connection.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/logging.h"
#include "frontend/resp/resp_command_table.h"
#include "frontend/resp/resp_dispatcher.h"
#include "frontend/resp/resp_render.h"

namespace micedb::resp {
namespace {

// Awaits KvBackend::Execute from a coroutine. The backend may call back on any thread (or
// before Execute returns); the completion is always posted to the awaiting coroutine's
// executor, and outstanding work is counted so the io_context keeps running until it lands.
template <typename Token>
auto AsyncExecute(kv::KvBackend& backend, std::atomic<int64_t>* inflight, kv::Command cmd,
                  kv::ReadMode mode, Token&& token) {
  return asio::async_initiate<Token, void(Result<kv::CommandResult>)>(
      [&backend, inflight](auto handler, kv::Command command, kv::ReadMode read_mode) {
        auto executor = asio::get_associated_executor(handler);
        using Handler = decltype(handler);
        using Work = decltype(asio::make_work_guard(executor));
        struct Pending {
          Handler handler;
          Work work;
        };
        auto pending =
            std::make_shared<Pending>(Pending{std::move(handler), asio::make_work_guard(executor)});
        inflight->fetch_add(1);
        backend.Execute(
            std::move(command), read_mode,
            [pending = std::move(pending), inflight](Result<kv::CommandResult> result) mutable {
              {
                // Take the state out of this callback (the backend may destroy
                // it later, elsewhere), hand it to the connection's executor, and
                // let every local go before saying we are done.
                auto p = std::move(pending);
                auto ex = p->work.get_executor();
                asio::post(ex, [p, result = std::move(result)]() mutable {
                  std::move(p->handler)(std::move(result));
                  p->work.reset();
                });
              }
              inflight->fetch_sub(1);
            });
      },
      token, std::move(cmd), mode);
}

// At most this many pipelined commands, of at most this many argument bytes together, run as
// one Txn (one raft entry).
constexpr size_t kMaxPipelinedRun = 128;
constexpr size_t kMaxPipelinedRunBytes = 1 << 20;

RespParserLimits ParserLimits(const ServerOptions& o) {
  RespParserLimits limits;
  limits.max_bulk_bytes = std::max(o.max_key_bytes, o.max_value_bytes);
  limits.max_multibulk_len = o.max_multibulk_len;
  limits.max_inline_bytes = o.max_inline_bytes;
  limits.max_request_bytes = o.max_request_bytes;
  return limits;
}

}  // namespace

RespConnection::RespConnection(security::NetStream stream, ServerContext* server,
                               kv::KvBackend* backend)
    : stream_(std::move(stream)),
      socket_(stream_.socket()),
      timer_(socket_.get_executor()),
      server_(server),
      backend_(backend),
      parser_(ParserLimits(*server->options)),
      session_(server->options->max_scan_cursors) {
  timer_.expires_at(Clock::time_point::max());
}

void RespConnection::Start(std::shared_ptr<ClientRegistry::Client> client) {
  client_ = std::move(client);
  {
    std::lock_guard<std::mutex> lock(client_->mu);
    session_.id = client_->info.id;
    session_.addr = client_->info.addr;
    session_.laddr = client_->info.laddr;
    session_.created_ms = client_->info.created_ms;
  }
  // Replies are first written without waiting (see Flush); asio's own operations work the
  // same on a non-blocking socket.
  asio::error_code ignored;
  socket_.non_blocking(true, ignored);
  session_.authenticated = server_->options->password.empty();
  parser_.set_authenticated(session_.authenticated);
  auto on_exit = [](const std::exception_ptr& error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      GetLogger("kv")->error("resp connection failed: {}", e.what());
    }
  };
  auto self = shared_from_this();
  asio::co_spawn(
      socket_.get_executor(), [self] { return self->Run(); }, on_exit);
  asio::co_spawn(
      socket_.get_executor(), [self] { return self->Watchdog(); }, on_exit);
}

void RespConnection::Kill() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

void RespConnection::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  timer_.cancel();
}

void RespConnection::SetDeadline(Clock::time_point deadline) {
  if (timer_.expiry() != deadline) timer_.expires_at(deadline);
}

asio::awaitable<void> RespConnection::Watchdog() {
  while (!closed_) {
    asio::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    if (timer_.expiry() <= Clock::now()) {
      timed_out_ = true;
      server_->stats->timed_out_clients.fetch_add(1, std::memory_order_relaxed);
      Close();
    }
  }
}

asio::awaitable<bool> RespConnection::Flush() {
  if (closed_) co_return false;
  if (out_.empty()) co_return true;
  server_->stats->net_output_bytes.fetch_add(out_.size(), std::memory_order_relaxed);
  // Usually the socket takes everything at once: then no deadline (and no timer churn) is
  // needed. Otherwise the rest is written asynchronously under the request timeout.
  asio::error_code ec;
  size_t written = 0;
  // A TLS stream is only written asynchronously (OpenSSL keeps what a short write took).
  if (stream_.tls()) ec = asio::error::would_block;
  while (!ec && written < out_.size()) {
    const size_t n =
        socket_.write_some(asio::buffer(out_.data() + written, out_.size() - written), ec);
    if (ec) break;
    written += n;
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec.clear();
    const auto timeout = server_->options->request_timeout;
    if (timeout.count() > 0) SetDeadline(Clock::now() + timeout);
    co_await asio::async_write(stream_, asio::buffer(out_.data() + written, out_.size() - written),
                               asio::redirect_error(asio::use_awaitable, ec));
    SetDeadline(Clock::time_point::max());
  }
  out_.clear();
  if (ec) {
    Close();
    co_return false;
  }
  co_return !closed_;
}

void RespConnection::PublishInfo(const CommandSpec* spec, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(client_->mu);
  ClientInfo& info = client_->info;
  info.last_active_ms = now_ms;
  info.last_command = spec != nullptr ? spec->name : "unknown";
  if (info.name != session_.name) info.name = session_.name;
  if (info.lib_name != session_.lib_name) info.lib_name = session_.lib_name;
  if (info.lib_version != session_.lib_version) info.lib_version = session_.lib_version;
  info.resp = static_cast<int>(session_.resp);
  info.multi = session_.in_multi ? static_cast<int>(session_.queued.size()) : -1;
  info.watched = session_.watched.size();
  info.query_buffer = parser_.buffered_bytes();
  info.readonly = session_.read_mode == kv::ReadMode::kLocalStale;
}

RespConnection::Dispatched RespConnection::Dispatch(std::vector<std::string>& args) {
  const ::micedb::Clock& clock = *server_->clock;
  Dispatched d;
  d.started = clock.NowMonotonic();
  d.now_ms = clock.NowWallMillis();
  d.plan = DispatchCommand(session_, *server_, args, d.now_ms, &d.spec);
  return d;
}

void RespConnection::Complete(Dispatched& d, const Result<kv::CommandResult>* result) {
  const size_t reply_start = out_.size();
  Plan& plan = d.plan;
  if (result != nullptr) {
    if (!result->ok()) server_->stats->backend_errors.fetch_add(1, std::memory_order_relaxed);
    RespWriter writer(&out_, session_.resp);
    if (plan.render) {
      plan.render(*result, writer);
    } else {
      RenderResult(*result, writer);
    }
  } else {
    out_.append(plan.reply);
  }
  if (plan.close_after) session_.closing = true;
  parser_.set_authenticated(session_.authenticated);

  ServerStats& stats = *server_->stats;
  stats.commands_processed.fetch_add(1, std::memory_order_relaxed);
  const bool failed = out_.size() > reply_start && out_[reply_start] == '-';
  if (failed) stats.error_replies.fetch_add(1, std::memory_order_relaxed);
  if (d.spec != nullptr) {
    CommandCounters& counters = stats.per_command[CommandIndex(*d.spec)];
    counters.calls.fetch_add(1, std::memory_order_relaxed);
    if (failed) counters.failed.fetch_add(1, std::memory_order_relaxed);
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
        server_->clock->NowMonotonic() - d.started);
    counters.usec.fetch_add(static_cast<uint64_t>(elapsed.count()), std::memory_order_relaxed);
    counters.latency_seconds.Observe(static_cast<double>(elapsed.count()) / 1e6);
  }
  PublishInfo(d.spec, d.now_ms);
}

asio::awaitable<void> RespConnection::RunCommand(std::vector<std::string>& args) {
  Dispatched d = Dispatch(args);
  if (!d.plan.command.has_value()) {
    Complete(d, nullptr);
    co_return;
  }
  Result<kv::CommandResult> result =
      co_await AsyncExecute(*backend_, &server_->stats->backend_inflight,
                            std::move(*d.plan.command), session_.read_mode, asio::use_awaitable);
  Complete(d, &result);
}

bool RespConnection::Pipelinable(const CommandSpec* spec) const {
  // Data commands whose dispatch and reply touch no connection state. Everything else (MULTI
  // and EXEC, WATCH, whose reply records revisions, SCAN, whose reply records a cursor, HELLO,
  // which changes the protocol the replies before it must be written in, AUTH, ...) runs on
  // its own, after the run before it has been answered.
  return spec != nullptr && (spec->flags & (kCmdWrite | kCmdReadonly)) != 0 &&
         (spec->flags & (kCmdTxnControl | kCmdAdmin)) == 0 && spec->name != "scan" &&
         !session_.in_multi && session_.authenticated;
}

asio::awaitable<void> RespConnection::RunPipelined() {
  std::vector<Dispatched> run;
  run.swap(run_);
  run_bytes_ = 0;
  size_t commands = 0;
  for (const Dispatched& d : run) commands += d.plan.command.has_value() ? 1 : 0;
  if (commands <= 1) {
    for (Dispatched& d : run) {
      if (!d.plan.command.has_value()) {
        Complete(d, nullptr);
        continue;
      }
      Result<kv::CommandResult> result = co_await AsyncExecute(
          *backend_, &server_->stats->backend_inflight, std::move(*d.plan.command),
          session_.read_mode, asio::use_awaitable);
      Complete(d, &result);
    }
    co_return;
  }
  // Several commands arrived together: they run as one Txn, so in one raft entry (one
  // ReadIndex when all of them read), in order, each with its own result, as if one after the
  // other. Running them as separate requests instead would let a retried one (after a leader
  // change) land after a later one: SET k 1, SET k 2 could leave 1. Marked a pipeline: when
  // the keys span regions the router cuts the run by region, keeping each key's commands in
  // order (docs/sharding.md §4).
  kv::Command txn_cmd;
  kv::Txn* txn = txn_cmd.mutable_txn();
  txn->set_pipeline(true);
  int64_t now_ms = 0;
  for (Dispatched& d : run) {
    if (!d.plan.command.has_value()) continue;
    now_ms = std::max(now_ms, d.now_ms);
    *txn->add_commands() = std::move(*d.plan.command);
  }
  txn_cmd.set_now_ms(now_ms);
  const Result<kv::CommandResult> result =
      co_await AsyncExecute(*backend_, &server_->stats->backend_inflight, std::move(txn_cmd),
                            session_.read_mode, asio::use_awaitable);
  const bool complete = result.ok() && result->has_array() &&
                        result->array().items_size() == static_cast<int>(commands);
  int next = 0;
  for (Dispatched& d : run) {
    if (!d.plan.command.has_value()) {
      Complete(d, nullptr);
    } else if (!complete) {
      // The whole run failed (an error applies to each command), or the result is malformed.
      const Result<kv::CommandResult> failed =
          result.ok() ? Result<kv::CommandResult>(Status::Internal("pipeline result is malformed"))
                      : result;
      Complete(d, &failed);
    } else {
      const Result<kv::CommandResult> item(result->array().items(next++));
      Complete(d, &item);
    }
    // Large replies (a run of GETs of big values) are written as they are rendered rather
    // than all held at once; a client that does not read them meets the write deadline here.
    if (out_.size() >= server_->options->max_pending_reply_bytes && !co_await Flush()) co_return;
  }
}

asio::awaitable<void> RespConnection::Run() {
  const ServerOptions& options = *server_->options;
  std::vector<char> buffer(16 * 1024);
  std::vector<std::string> args;
  std::optional<Clock::time_point> request_started;
  if (stream_.tls()) {
    if (options.request_timeout.count() > 0) SetDeadline(Clock::now() + options.request_timeout);
    asio::error_code ec;
    co_await stream_.tls_stream()->async_handshake(asio::ssl::stream_base::server,
                                                   asio::redirect_error(asio::use_awaitable, ec));
    SetDeadline(Clock::time_point::max());
    if (ec) {
      server_->stats->tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      Close();
      server_->clients->Unregister(session_.id);
      co_return;
    }
  }
  while (!closed_) {
    bool completed_any = false;
    // Data commands that arrived together (a pipelining client) are gathered into run_ and
    // run together (RunPipelined); any other command first waits for the run before it.
    while (!closed_ && !session_.closing) {
      const RespParser::Outcome outcome = parser_.Next(&args);
      if (outcome == RespParser::Outcome::kNeedMore) break;
      if (outcome == RespParser::Outcome::kError) {
        co_await RunPipelined();
        server_->stats->protocol_errors.fetch_add(1, std::memory_order_relaxed);
        RespWriter(&out_, session_.resp).Error("ERR " + parser_.error());
        co_await Flush();
        Close();
        break;
      }
      completed_any = true;
      if (Pipelinable(FindCommand(args[0]))) {
        size_t bytes = 0;
        for (const std::string& a : args) bytes += a.size();
        // A run is one raft entry: keep it small enough to travel as one (a large command
        // still goes alone).
        if (!run_.empty() && run_bytes_ + bytes > kMaxPipelinedRunBytes) co_await RunPipelined();
        run_bytes_ += bytes;
        run_.push_back(Dispatch(args));
        if (run_.size() >= kMaxPipelinedRun) co_await RunPipelined();
      } else {
        co_await RunPipelined();
        co_await RunCommand(args);
      }
      if (out_.size() >= options.max_pending_reply_bytes && !co_await Flush()) break;
    }
    if (!closed_) co_await RunPipelined();
    if (closed_) break;
    if (!co_await Flush()) break;
    if (session_.closing) break;

    // Deadlines while waiting for input: a request that has begun must complete within
    // request_timeout of when it began; with nothing pending, idle_timeout applies.
    if (parser_.InRequest()) {
      if (completed_any || !request_started.has_value()) request_started = Clock::now();
      if (options.request_timeout.count() > 0) {
        SetDeadline(*request_started + options.request_timeout);
      }
    } else {
      request_started.reset();
      SetDeadline(options.idle_timeout.count() > 0 ? Clock::now() + options.idle_timeout
                                                   : Clock::time_point::max());
    }
    asio::error_code ec;
    const size_t n = co_await stream_.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    SetDeadline(Clock::time_point::max());
    if (ec || n == 0) break;
    server_->stats->net_input_bytes.fetch_add(n, std::memory_order_relaxed);
    parser_.Feed(std::string_view(buffer.data(), n));
  }
  Close();
  server_->clients->Unregister(session_.id);
}

}  // namespace micedb::resp
