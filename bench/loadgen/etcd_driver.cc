// etcd driver: etcd's v3 KV API over gRPC, asynchronously. Each thread polls its own
// CompletionQueue; a client's next call is started from the thread that saw its last one
// finish. Each channel is a TCP connection of its own (grpc_channels.h). Range is sent with
// serializable = false, which is etcd's default and makes the read linearizable (it goes
// through the leader's ReadIndex).
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>

#include "driver.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpc_channels.h"

namespace micedb::bench {

namespace {

using etcdserverpb::KV;

struct Client {
  Client(uint64_t seed, KV::Stub* s, grpc::CompletionQueue* q) : rng(seed), stub(s), cq(q) {}
  Rng rng;
  KV::Stub* stub;
  grpc::CompletionQueue* cq;
  std::string key;
};

struct Shared {
  const Workload* wl = nullptr;
  bool load = false;
  Window window;
  int timeout_ms = 10000;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> inflight{0};
  std::atomic<uint64_t> next{0};
  uint64_t end = 0;
  std::atomic<uint64_t> loaded{0};
};

struct Call {
  Client* client = nullptr;
  OpType op = OpType::kWrite;
  int64_t begin = 0;
  grpc::ClientContext ctx;
  grpc::Status status;
  etcdserverpb::PutResponse put;
  etcdserverpb::RangeResponse range;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> put_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> range_rpc;
};

void Issue(Shared* sh, Client* c) {
  if (sh->stop.load()) {
    return;
  }
  const Workload& wl = *sh->wl;
  auto call = std::make_unique<Call>();
  call->client = c;
  if (sh->load) {
    const uint64_t i = sh->next.fetch_add(1);
    if (i >= sh->end) {
      return;
    }
    KeyNameInto(wl.spec().key_prefix, i, c->key);
    call->op = OpType::kWrite;
  } else {
    call->op = wl.NextOp(c->rng);
    KeyNameInto(wl.spec().key_prefix, wl.NextKey(c->rng), c->key);
  }
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(sh->timeout_ms));
  sh->inflight.fetch_add(1, std::memory_order_relaxed);
  call->begin = NowNs();
  Call* raw = call.release();
  if (raw->op == OpType::kWrite) {
    etcdserverpb::PutRequest req;
    req.set_key(c->key);
    const std::string_view v = wl.NextValue(c->rng);
    req.set_value(v.data(), v.size());
    raw->put_rpc = c->stub->AsyncPut(&raw->ctx, req, c->cq);
    raw->put_rpc->Finish(&raw->put, &raw->status, raw);
  } else {
    etcdserverpb::RangeRequest req;
    req.set_key(c->key);
    raw->range_rpc = c->stub->AsyncRange(&raw->ctx, req, c->cq);
    raw->range_rpc->Finish(&raw->range, &raw->status, raw);
  }
}

void Poll(Shared* sh, grpc::CompletionQueue* cq, Stats* stats) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    const int64_t done = NowNs();
    sh->inflight.fetch_sub(1, std::memory_order_relaxed);
    if (!ok || !call->status.ok()) {
      stats->Error(ok ? "rpc: " + std::to_string(call->status.error_code()) + " " +
                            call->status.error_message()
                      : "rpc: completion queue failure");
    } else if (sh->load) {
      sh->loaded.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (call->op == OpType::kRead && call->range.kvs_size() == 0) {
        ++stats->misses;
      }
      stats->Done(sh->window, call->op, call->begin, done);
    }
    Issue(sh, call->client);
  }
}

// Connects, then starts the clock (the warm-up and measured window) and every client, runs
// `wait` on the calling thread, and stops.
template <typename Wait>
Stats Drive(const std::vector<Endpoint>& endpoints, int clients, int connections, int threads,
            uint64_t seed, double warmup_s, double duration_s, Shared* sh, Wait&& wait) {
  clients = std::max(clients, 1);
  connections = std::clamp(connections, 1, clients);
  threads = std::max(threads, 1);
  const std::vector<std::shared_ptr<grpc::Channel>> channels =
      ConnectChannels(endpoints, connections);
  std::vector<std::unique_ptr<KV::Stub>> stubs;
  stubs.reserve(connections);
  for (const auto& ch : channels) {
    stubs.push_back(KV::NewStub(ch));
  }
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs;
  cqs.reserve(threads);
  std::vector<Stats> stats(threads);
  for (int t = 0; t < threads; ++t) {
    cqs.push_back(std::make_unique<grpc::CompletionQueue>());
  }
  std::vector<std::unique_ptr<Client>> cls;
  cls.reserve(clients);
  for (int i = 0; i < clients; ++i) {
    uint64_t s = seed * 1000003 + static_cast<uint64_t>(i);
    cls.push_back(
        std::make_unique<Client>(s, stubs[i % connections].get(), cqs[i % threads].get()));
  }
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(Poll, sh, cqs[t].get(), &stats[t]);
  }
  sh->window.start_ns = NowNs() + static_cast<int64_t>(warmup_s * 1e9);
  sh->window.end_ns = sh->window.start_ns + static_cast<int64_t>(duration_s * 1e9);
  for (auto& c : cls) {
    Issue(sh, c.get());
  }
  wait();
  // No call starts after this; the ones in flight finish or hit their deadline, then each
  // queue drains and its thread returns.
  sh->stop = true;
  const int64_t unanswered = sh->inflight.load();
  for (auto& cq : cqs) {
    cq->Shutdown();
  }
  for (auto& w : workers) {
    w.join();
  }
  Stats total;
  for (auto& s : stats) {
    total.Merge(s);
  }
  if (unanswered > 0 && total.first_error.empty()) {
    total.first_error = std::to_string(unanswered) + " requests unanswered at the end";
  }
  return total;
}

}  // namespace

RunOutcome RunEtcd(const RunOptions& opts, const Workload& wl) {
  Shared sh;
  sh.wl = &wl;
  sh.timeout_ms = opts.timeout_ms;
  RunOutcome out;
  // Channels connect before the clock starts.
  out.stats = Drive(opts.endpoints, opts.clients, opts.connections, opts.threads, opts.seed,
                    opts.warmup_s, opts.duration_s, &sh, [&] {
                      SleepUntil(sh.window.start_ns, [] { return false; });
                      const double cpu0 = ProcessCpuSeconds();
                      SleepUntil(sh.window.end_ns, [] { return false; });
                      out.cpu_s = ProcessCpuSeconds() - cpu0;
                      sh.stop = true;
                      SleepUntil(NowNs() + int64_t{opts.timeout_ms} * 1000000,
                                 [&] { return sh.inflight.load() <= 0; });
                    });
  out.window = sh.window;
  return out;
}

LoadOutcome LoadEtcd(const LoadOptions& opts, const Workload& wl) {
  Shared sh;
  sh.wl = &wl;
  sh.load = true;
  sh.timeout_ms = opts.timeout_ms;
  sh.next = opts.first;
  sh.end = opts.first + opts.count;
  const int64_t t0 = NowNs();
  Stats stats = Drive(
      opts.endpoints, opts.clients, opts.connections, opts.threads, opts.seed, 0, 0, &sh, [&] {
        SleepUntil(INT64_MAX, [&] { return sh.next.load() >= sh.end && sh.inflight.load() <= 0; });
      });
  LoadOutcome out;
  out.keys = sh.loaded.load();
  out.seconds = static_cast<double>(NowNs() - t0) / 1e9;
  out.errors = stats.errors;
  out.first_error = stats.first_error;
  return out;
}

}  // namespace micedb::bench
