// Drivers of two key-value APIs over gRPC, asynchronously: etcd's v3 KV API (Put, Range) and
// MiceDB's raw micedb.kv.v1 (Put, Get, the same path as the Redis front end's SET and GET,
// which makes it the raw-path baseline for the transactional API's one-shot writes). Each
// thread polls its own CompletionQueue; a client's next call is started from the thread that
// saw its last one finish. Each channel is a TCP connection of its own (grpc_channels.h).
// etcd's Range is sent with serializable = false and MiceDB's Get with LINEARIZABLE, each the
// API's default: the read is confirmed by the leader.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>

#include "driver.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpc_channels.h"
#include "micedb/kv_service.grpc.pb.h"

namespace micedb::bench {

namespace {

// What differs between the two APIs: the stub, the messages and how a read's miss shows.
struct EtcdApi {
  using Service = etcdserverpb::KV;
  using PutRequest = etcdserverpb::PutRequest;
  using PutResponse = etcdserverpb::PutResponse;
  using GetRequest = etcdserverpb::RangeRequest;
  using GetResponse = etcdserverpb::RangeResponse;
  static auto AsyncPut(Service::Stub* s, grpc::ClientContext* ctx, const PutRequest& req,
                       grpc::CompletionQueue* cq) {
    return s->AsyncPut(ctx, req, cq);
  }
  static auto AsyncGet(Service::Stub* s, grpc::ClientContext* ctx, const GetRequest& req,
                       grpc::CompletionQueue* cq) {
    return s->AsyncRange(ctx, req, cq);
  }
  static bool Missed(const GetResponse& r) { return r.kvs_size() == 0; }
};

struct MiceKvApi {
  using Service = ::micedb::kv::v1::Kv;
  using PutRequest = ::micedb::kv::v1::PutRequest;
  using PutResponse = ::micedb::kv::v1::PutResponse;
  using GetRequest = ::micedb::kv::v1::GetRequest;
  using GetResponse = ::micedb::kv::v1::GetResponse;
  static auto AsyncPut(Service::Stub* s, grpc::ClientContext* ctx, const PutRequest& req,
                       grpc::CompletionQueue* cq) {
    return s->AsyncPut(ctx, req, cq);
  }
  static auto AsyncGet(Service::Stub* s, grpc::ClientContext* ctx, const GetRequest& req,
                       grpc::CompletionQueue* cq) {
    return s->AsyncGet(ctx, req, cq);
  }
  static bool Missed(const GetResponse& r) { return !r.found(); }
};

template <typename Api>
struct Client {
  using Stub = typename Api::Service::Stub;
  Client(uint64_t seed, Stub* s, grpc::CompletionQueue* q) : rng(seed), stub(s), cq(q) {}
  Rng rng;
  Stub* stub;
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

template <typename Api>
struct Call {
  Client<Api>* client = nullptr;
  OpType op = OpType::kWrite;
  int64_t begin = 0;
  grpc::ClientContext ctx;
  grpc::Status status;
  typename Api::PutResponse put;
  typename Api::GetResponse get;
  std::unique_ptr<grpc::ClientAsyncResponseReader<typename Api::PutResponse>> put_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<typename Api::GetResponse>> get_rpc;
};

template <typename Api>
void Issue(Shared* sh, Client<Api>* c) {
  if (sh->stop.load()) {
    return;
  }
  const Workload& wl = *sh->wl;
  auto call = std::make_unique<Call<Api>>();
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
  Call<Api>* raw = call.release();
  if (raw->op == OpType::kWrite) {
    typename Api::PutRequest req;
    req.set_key(c->key);
    const std::string_view v = wl.NextValue(c->rng);
    req.set_value(v.data(), v.size());
    raw->put_rpc = Api::AsyncPut(c->stub, &raw->ctx, req, c->cq);
    raw->put_rpc->Finish(&raw->put, &raw->status, raw);
  } else {
    typename Api::GetRequest req;
    req.set_key(c->key);
    raw->get_rpc = Api::AsyncGet(c->stub, &raw->ctx, req, c->cq);
    raw->get_rpc->Finish(&raw->get, &raw->status, raw);
  }
}

template <typename Api>
void Poll(Shared* sh, grpc::CompletionQueue* cq, Stats* stats) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    std::unique_ptr<Call<Api>> call(static_cast<Call<Api>*>(tag));
    const int64_t done = NowNs();
    sh->inflight.fetch_sub(1, std::memory_order_relaxed);
    if (!ok || !call->status.ok()) {
      stats->Error(ok ? "rpc: " + std::to_string(call->status.error_code()) + " " +
                            call->status.error_message()
                      : "rpc: completion queue failure");
    } else if (sh->load) {
      sh->loaded.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (call->op == OpType::kRead && Api::Missed(call->get)) {
        ++stats->misses;
      }
      stats->Done(sh->window, call->op, call->begin, done);
    }
    Issue(sh, call->client);
  }
}

// Connects, then starts the clock (the warm-up and measured window) and every client, runs
// `wait` on the calling thread, and stops.
template <typename Api, typename Wait>
Stats Drive(const std::vector<Endpoint>& endpoints, int clients, int connections, int threads,
            uint64_t seed, double warmup_s, double duration_s, Shared* sh, Wait&& wait) {
  clients = std::max(clients, 1);
  connections = std::clamp(connections, 1, clients);
  threads = std::max(threads, 1);
  const std::vector<std::shared_ptr<grpc::Channel>> channels =
      ConnectChannels(endpoints, connections);
  std::vector<std::unique_ptr<typename Api::Service::Stub>> stubs;
  stubs.reserve(connections);
  for (const auto& ch : channels) {
    stubs.push_back(Api::Service::NewStub(ch));
  }
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs;
  cqs.reserve(threads);
  std::vector<Stats> stats(threads);
  for (int t = 0; t < threads; ++t) {
    cqs.push_back(std::make_unique<grpc::CompletionQueue>());
  }
  std::vector<std::unique_ptr<Client<Api>>> cls;
  cls.reserve(clients);
  for (int i = 0; i < clients; ++i) {
    uint64_t s = seed * 1000003 + static_cast<uint64_t>(i);
    cls.push_back(
        std::make_unique<Client<Api>>(s, stubs[i % connections].get(), cqs[i % threads].get()));
  }
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(Poll<Api>, sh, cqs[t].get(), &stats[t]);
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

template <typename Api>
RunOutcome Run(const RunOptions& opts, const Workload& wl) {
  Shared sh;
  sh.wl = &wl;
  sh.timeout_ms = opts.timeout_ms;
  RunOutcome out;
  // Channels connect before the clock starts.
  out.stats = Drive<Api>(opts.endpoints, opts.clients, opts.connections, opts.threads, opts.seed,
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

template <typename Api>
LoadOutcome Load(const LoadOptions& opts, const Workload& wl) {
  Shared sh;
  sh.wl = &wl;
  sh.load = true;
  sh.timeout_ms = opts.timeout_ms;
  sh.next = opts.first;
  sh.end = opts.first + opts.count;
  const int64_t t0 = NowNs();
  Stats stats = Drive<Api>(
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

}  // namespace

RunOutcome RunEtcd(const RunOptions& opts, const Workload& wl) { return Run<EtcdApi>(opts, wl); }
LoadOutcome LoadEtcd(const LoadOptions& opts, const Workload& wl) {
  return Load<EtcdApi>(opts, wl);
}
RunOutcome RunKv(const RunOptions& opts, const Workload& wl) { return Run<MiceKvApi>(opts, wl); }
LoadOutcome LoadKv(const LoadOptions& opts, const Workload& wl) {
  return Load<MiceKvApi>(opts, wl);
}

}  // namespace micedb::bench
