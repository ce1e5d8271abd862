// RESP driver: asio, callbacks, one io_context per thread, connections pinned to a thread, so
// a connection's state is only ever touched by one thread and needs no locks. Every reply is
// matched to the oldest request outstanding on its connection (RESP answers in order); the
// client that sent it records the latency and queues its next request, and everything queued
// while a batch of replies is handled leaves in one write.
#include <asio.hpp>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>
#include <thread>

#include "driver.h"
#include "resp_protocol.h"

namespace micedb::bench {

namespace {

using asio::ip::tcp;

struct Client {
  explicit Client(uint64_t seed) : rng(seed) {}
  Rng rng;
  std::string key;  // scratch for key names
};

// What every connection of one run or load shares.
struct Shared {
  const Workload* wl = nullptr;
  bool load = false;
  Window window;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> inflight{0};
  std::atomic<int> live{0};  // connections not lost
  // load phase
  std::atomic<uint64_t> next{0};
  uint64_t end = 0;
  int batch = 100;
  std::atomic<uint64_t> loaded{0};
};

struct Pending {
  Client* client;
  OpType op;
  int64_t begin;
  uint32_t keys;  // keys in an MSET (load phase)
};

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(asio::io_context& io, Shared* shared, Stats* stats)
      : sock_(io), shared_(shared), stats_(stats), rbuf_(size_t{64} * 1024) {}

  void Connect(const Endpoint& ep) {
    tcp::resolver resolver(sock_.get_executor());
    asio::connect(sock_, resolver.resolve(ep.host, std::to_string(ep.port)));
    sock_.set_option(tcp::no_delay(true));
  }

  void AddClient(Client* c) { clients_.push_back(c); }

  // Called on the connection's thread: every client sends its first request.
  void Start() {
    for (Client* c : clients_) {
      Issue(c);
    }
    Flush();
    Read();
  }

  void Close() {
    closed_ = true;
    asio::error_code ignored;
    sock_.close(ignored);
  }

  // Requests still unanswered (read after the io threads stop).
  size_t outstanding() const { return inflight_.size(); }

 private:
  void Issue(Client* c) {
    if (shared_->stop.load() || closed_) {
      return;
    }
    const Workload& wl = *shared_->wl;
    if (shared_->load) {
      const uint64_t first = shared_->next.fetch_add(shared_->batch);
      if (first >= shared_->end) {
        return;  // nothing left: this client is done
      }
      const uint64_t last = std::min<uint64_t>(first + shared_->batch, shared_->end);
      AppendArrayHeader(wbuf_, 1 + 2 * (last - first));
      AppendBulk(wbuf_, "MSET");
      for (uint64_t i = first; i < last; ++i) {
        KeyNameInto(wl.spec().key_prefix, i, c->key);
        AppendBulk(wbuf_, c->key);
        AppendBulk(wbuf_, wl.NextValue(c->rng));
      }
      inflight_.push_back({c, OpType::kWrite, NowNs(), static_cast<uint32_t>(last - first)});
    } else {
      const OpType op = wl.NextOp(c->rng);
      KeyNameInto(wl.spec().key_prefix, wl.NextKey(c->rng), c->key);
      if (op == OpType::kWrite) {
        AppendCommand(wbuf_, {"SET", c->key, wl.NextValue(c->rng)});
      } else {
        AppendCommand(wbuf_, {"GET", c->key});
      }
      inflight_.push_back({c, op, NowNs(), 0});
    }
    shared_->inflight.fetch_add(1, std::memory_order_relaxed);
  }

  void Flush() {
    if (writing_ || wbuf_.empty() || closed_) {
      return;
    }
    writing_ = true;
    sending_.swap(wbuf_);
    wbuf_.clear();
    asio::async_write(sock_, asio::buffer(sending_),
                      [self = shared_from_this()](asio::error_code ec, size_t) {
                        self->writing_ = false;
                        self->sending_.clear();
                        if (ec) {
                          self->Fail("write: " + ec.message());
                          return;
                        }
                        self->Flush();
                      });
  }

  void Read() {
    if (rlen_ == rbuf_.size()) {
      rbuf_.resize(rbuf_.size() * 2);  // one reply larger than the buffer
    }
    sock_.async_read_some(asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_),
                          [self = shared_from_this()](asio::error_code ec, size_t n) {
                            if (ec) {
                              self->Fail("read: " + ec.message());
                              return;
                            }
                            self->rlen_ += n;
                            self->OnData();
                          });
  }

  void OnData() {
    size_t pos = 0;
    while (pos < rlen_) {
      size_t used = 0;
      Reply reply;
      const ParseResult r =
          ParseReply(std::string_view(rbuf_.data() + pos, rlen_ - pos), &used, &reply);
      if (r == ParseResult::kIncomplete) {
        break;
      }
      if (r == ParseResult::kBad || inflight_.empty()) {
        Fail(r == ParseResult::kBad ? "bad reply bytes" : "reply with no request outstanding");
        return;
      }
      OnReply(reply);
      pos += used;
    }
    if (pos > 0) {
      std::memmove(rbuf_.data(), rbuf_.data() + pos, rlen_ - pos);
      rlen_ -= pos;
    }
    Flush();
    Read();
  }

  void OnReply(const Reply& reply) {
    const Pending p = inflight_.front();
    inflight_.pop_front();
    shared_->inflight.fetch_sub(1, std::memory_order_relaxed);
    const int64_t done = NowNs();
    if (reply.kind == ReplyKind::kError) {
      stats_->Error("server: " + std::string(reply.text));
    } else if (shared_->load) {
      shared_->loaded.fetch_add(p.keys, std::memory_order_relaxed);
    } else {
      if (p.op == OpType::kRead && reply.kind == ReplyKind::kNil) {
        ++stats_->misses;
      }
      stats_->Done(shared_->window, p.op, p.begin, done);
    }
    Issue(p.client);
  }

  void Fail(const std::string& what) {
    if (closed_) {
      return;
    }
    // A lost connection takes its clients out of the run; every request it had outstanding
    // counts as an error, and the first error says what happened.
    stats_->Error("connection " + what);
    shared_->live.fetch_sub(1);
    stats_->errors += inflight_.size();
    shared_->inflight.fetch_sub(static_cast<int64_t>(inflight_.size()));
    inflight_.clear();
    Close();
  }

  tcp::socket sock_;
  Shared* shared_;
  Stats* stats_;
  std::vector<Client*> clients_;
  std::deque<Pending> inflight_;
  std::string wbuf_;
  std::string sending_;
  bool writing_ = false;
  bool closed_ = false;
  std::vector<char> rbuf_;
  size_t rlen_ = 0;
};

// Connects `connections` connections spread over the endpoints and `threads` io threads, and
// hands the clients out round-robin. Runs `wait` on the calling thread while the io threads
// work, then stops everything; returns the merged stats.
// The clock (warm-up, then the measured window) starts once every connection is up.
template <typename Wait>
Stats Drive(const std::vector<Endpoint>& endpoints, int clients, int connections, int threads,
            uint64_t seed, double warmup_s, double duration_s, Shared* shared, Wait&& wait) {
  if (endpoints.empty()) {
    throw std::invalid_argument("no endpoints");
  }
  clients = std::max(clients, 1);
  connections = std::clamp(connections, 1, clients);
  threads = std::clamp(threads, 1, connections);
  std::vector<std::unique_ptr<asio::io_context>> ios;
  ios.reserve(threads);
  std::vector<Stats> stats(threads);
  for (int t = 0; t < threads; ++t) {
    ios.push_back(std::make_unique<asio::io_context>(1));
  }
  std::vector<std::shared_ptr<Conn>> conns;
  conns.reserve(connections);
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_shared<Conn>(*ios[i % threads], shared, &stats[i % threads]);
    c->Connect(endpoints[i % endpoints.size()]);
    conns.push_back(std::move(c));
  }
  std::vector<std::unique_ptr<Client>> cls;
  cls.reserve(clients);
  for (int i = 0; i < clients; ++i) {
    uint64_t s = seed * 1000003 + static_cast<uint64_t>(i);
    cls.push_back(std::make_unique<Client>(s));
    conns[i % connections]->AddClient(cls.back().get());
  }
  shared->live = connections;
  shared->window.start_ns = NowNs() + static_cast<int64_t>(warmup_s * 1e9);
  shared->window.end_ns = shared->window.start_ns + static_cast<int64_t>(duration_s * 1e9);
  for (int i = 0; i < connections; ++i) {
    asio::post(*ios[i % threads], [c = conns[i]] { c->Start(); });
  }
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([io = ios[t].get()] {
      auto guard = asio::make_work_guard(*io);
      io->run();
    });
  }
  wait();
  shared->stop = true;
  for (auto& io : ios) {
    io->stop();
  }
  for (auto& w : workers) {
    w.join();
  }
  // The io threads are gone: close every socket here, then run the handlers that closing
  // aborted, so that they drop their references before the io_contexts go away.
  uint64_t unanswered = 0;
  for (auto& c : conns) {
    unanswered += c->outstanding();
    c->Close();
  }
  for (auto& io : ios) {
    io->restart();
    io->run();
  }
  Stats total;
  for (auto& s : stats) {
    total.Merge(s);
  }
  if (unanswered > 0) {
    total.errors += unanswered;
    if (total.first_error.empty()) {
      total.first_error = std::to_string(unanswered) + " requests unanswered at the end";
    }
  }
  return total;
}

// Sleeps until `until_ns` or until `done()` holds, checking every few milliseconds.
template <typename Done>
void SleepUntil(int64_t until_ns, Done&& done) {
  while (NowNs() < until_ns && !done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

RunOutcome RunResp(const RunOptions& opts, const Workload& wl) {
  Shared shared;
  shared.wl = &wl;
  RunOutcome out;
  out.stats = Drive(opts.endpoints, opts.clients, opts.connections, opts.threads, opts.seed,
                    opts.warmup_s, opts.duration_s, &shared, [&] {
                      SleepUntil(shared.window.start_ns, [] { return false; });
                      const double cpu0 = ProcessCpuSeconds();
                      SleepUntil(shared.window.end_ns, [] { return false; });
                      out.cpu_s = ProcessCpuSeconds() - cpu0;
                      shared.stop = true;
                      // Let the requests in flight finish, so that connections close cleanly.
                      SleepUntil(NowNs() + int64_t{opts.timeout_ms} * 1000000,
                                 [&] { return shared.inflight.load() <= 0; });
                    });
  out.window = shared.window;
  return out;
}

LoadOutcome LoadResp(const LoadOptions& opts, const Workload& wl) {
  Shared shared;
  shared.wl = &wl;
  shared.load = true;
  shared.next = opts.first;
  shared.end = opts.first + opts.count;
  shared.batch = std::max(opts.batch, 1);
  const int64_t t0 = NowNs();
  Stats stats = Drive(
      opts.endpoints, opts.clients, opts.connections, opts.threads, opts.seed, 0, 0, &shared, [&] {
        // Done when every batch was handed out and answered, or when no
        // connection is left to send the rest.
        SleepUntil(INT64_MAX, [&] {
          return (shared.next.load() >= shared.end && shared.inflight.load() <= 0) ||
                 shared.live.load() <= 0;
        });
      });
  LoadOutcome out;
  out.keys = shared.loaded.load();
  out.seconds = static_cast<double>(NowNs() - t0) / 1e9;
  out.errors = stats.errors;
  out.first_error = stats.first_error;
  return out;
}

std::vector<Endpoint> ParseEndpoints(std::string_view csv) {
  std::vector<Endpoint> out;
  while (!csv.empty()) {
    const size_t comma = csv.find(',');
    std::string_view item = csv.substr(0, comma);
    csv = comma == std::string_view::npos ? std::string_view{} : csv.substr(comma + 1);
    if (item.empty()) {
      continue;
    }
    const size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
      throw std::invalid_argument("endpoint '" + std::string(item) + "' is not host:port");
    }
    int port = 0;
    for (char ch : item.substr(colon + 1)) {
      if (ch < '0' || ch > '9' || port > 65535) {
        throw std::invalid_argument("endpoint '" + std::string(item) + "' has a bad port");
      }
      port = port * 10 + (ch - '0');
    }
    if (port == 0 || port > 65535) {
      throw std::invalid_argument("endpoint '" + std::string(item) + "' has a bad port");
    }
    out.push_back({std::string(item.substr(0, colon)), static_cast<uint16_t>(port)});
  }
  if (out.empty()) {
    throw std::invalid_argument("no endpoints given");
  }
  return out;
}

}  // namespace micedb::bench
