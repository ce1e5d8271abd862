// txn driver: MiceDB's transactional API micedb.txn.v1 over gRPC, asynchronously, after the
// etcd driver: each thread polls its own CompletionQueue, and a client's next call is started
// from the thread that saw its last one finish. A transaction of several calls (the bank's
// Begin, BatchGet, Put, Put, Commit) is one operation: its client has one call outstanding at
// a time, its latency runs from the first call's start to the last one's reply, and all its
// calls go to one node (the transaction lives at the node that began it).
//
// A run's end: no call starts once `stop` is set; a transaction cut off there is left to the
// node, which drops it after its idle timeout (it holds no locks before Commit).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>

#include "driver.h"
#include "grpc_channels.h"
#include "micedb/txn_service.grpc.pb.h"

namespace micedb::bench {

namespace {

namespace v1 = ::micedb::txn::v1;

// The bank moves at most this much per transfer.
constexpr int64_t kMaxTransfer = 100;
// Accounts per BatchGet of the check after a bank run (the node takes up to 10,000).
constexpr size_t kCheckBatch = 1000;

enum class Step { kOneShot, kBegin, kBatchGet, kPutFrom, kPutTo, kCommit, kRollback };

const char* StepName(Step s) {
  switch (s) {
    case Step::kOneShot:
      return "Commit (one-shot)";
    case Step::kBegin:
      return "Begin";
    case Step::kBatchGet:
      return "BatchGet";
    case Step::kPutFrom:
    case Step::kPutTo:
      return "Put";
    case Step::kCommit:
      return "Commit";
    case Step::kRollback:
      return "Rollback";
  }
  return "?";
}

struct Client {
  Client(uint64_t seed, v1::Txn::Stub* s, grpc::CompletionQueue* q) : rng(seed), stub(s), cq(q) {}
  Rng rng;
  v1::Txn::Stub* stub;
  grpc::CompletionQueue* cq;
  int64_t begin = 0;  // when the transaction under way started
  // The bank's transaction under way.
  uint64_t txn_id = 0;
  std::string from, to;
  int64_t from_balance = 0, to_balance = 0;  // after the transfer
};

struct Shared {
  const Workload* wl = nullptr;
  TxnOptions txn;
  bool load = false;
  Window window;
  int timeout_ms = 10000;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> inflight{0};
  // load: the next key index to write, the end, keys per Commit, keys acknowledged.
  std::atomic<uint64_t> next{0};
  uint64_t end = 0;
  uint64_t batch = 100;
  std::atomic<uint64_t> loaded{0};
};

// One call in flight; its address is the completion queue's tag.
struct Call {
  Client* client = nullptr;
  Step step = Step::kOneShot;
  uint64_t keys = 0;  // load: keys in this Commit
  grpc::ClientContext ctx;
  grpc::Status status;
  v1::BeginResponse begin;
  v1::BatchGetResponse batch_get;
  v1::PutResponse put;
  v1::CommitResponse commit;
  v1::RollbackResponse rollback;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::BeginResponse>> begin_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::BatchGetResponse>> batch_get_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::PutResponse>> put_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::CommitResponse>> commit_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::RollbackResponse>> rollback_rpc;
};

// A call for `c`'s next step, counted in flight; null once the run is stopping.
Call* NewCall(Shared* sh, Client* c, Step step) {
  if (sh->stop.load()) {
    return nullptr;
  }
  auto call = std::make_unique<Call>();
  call->client = c;
  call->step = step;
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(sh->timeout_ms));
  sh->inflight.fetch_add(1, std::memory_order_relaxed);
  return call.release();
}

void Start(Call* call, const v1::BeginRequest& req) {
  Client* c = call->client;
  call->begin_rpc = c->stub->AsyncBegin(&call->ctx, req, c->cq);
  call->begin_rpc->Finish(&call->begin, &call->status, call);
}
void Start(Call* call, const v1::BatchGetRequest& req) {
  Client* c = call->client;
  call->batch_get_rpc = c->stub->AsyncBatchGet(&call->ctx, req, c->cq);
  call->batch_get_rpc->Finish(&call->batch_get, &call->status, call);
}
void Start(Call* call, const v1::PutRequest& req) {
  Client* c = call->client;
  call->put_rpc = c->stub->AsyncPut(&call->ctx, req, c->cq);
  call->put_rpc->Finish(&call->put, &call->status, call);
}
void Start(Call* call, const v1::CommitRequest& req) {
  Client* c = call->client;
  call->commit_rpc = c->stub->AsyncCommit(&call->ctx, req, c->cq);
  call->commit_rpc->Finish(&call->commit, &call->status, call);
}
void Start(Call* call, const v1::RollbackRequest& req) {
  Client* c = call->client;
  call->rollback_rpc = c->stub->AsyncRollback(&call->ctx, req, c->cq);
  call->rollback_rpc->Finish(&call->rollback, &call->status, call);
}

// Starts `c`'s next step with `req`, unless the run is stopping.
template <typename Req>
void Send(Shared* sh, Client* c, Step step, const Req& req, uint64_t keys = 0) {
  Call* call = NewCall(sh, c, step);
  if (call == nullptr) {
    return;
  }
  call->keys = keys;
  Start(call, req);
}

void AddPut(v1::CommitRequest& req, std::string_view key, std::string_view value) {
  v1::Mutation* m = req.add_mutations();
  m->set_op(v1::Mutation::PUT);
  m->set_key(key.data(), key.size());
  m->set_value(value.data(), value.size());
}

// Starts `c`'s next transaction (or, loading, its next batch of keys).
void Issue(Shared* sh, Client* c) {
  const Workload& wl = *sh->wl;
  const std::string& prefix = wl.spec().key_prefix;
  std::string key;
  if (sh->load) {
    const uint64_t first = sh->next.fetch_add(sh->batch);
    if (first >= sh->end) {
      return;
    }
    const uint64_t n = std::min(sh->batch, sh->end - first);
    const std::string balance = std::to_string(sh->txn.balance);
    v1::CommitRequest req;
    for (uint64_t i = first; i < first + n; ++i) {
      KeyNameInto(prefix, i, key);
      AddPut(req, key,
             sh->txn.workload == TxnWorkload::kBank ? std::string_view(balance)
                                                    : wl.NextValue(c->rng));
    }
    c->begin = NowNs();
    Send(sh, c, Step::kOneShot, req, n);
    return;
  }
  switch (sh->txn.workload) {
    case TxnWorkload::kWrite: {
      v1::CommitRequest req;
      KeyNameInto(prefix, wl.NextKey(c->rng), key);
      AddPut(req, key, wl.NextValue(c->rng));
      c->begin = NowNs();
      Send(sh, c, Step::kOneShot, req);
      return;
    }
    case TxnWorkload::kMulti4: {
      const TxnOptions& t = sh->txn;
      const auto [a, b] = TwoKeys(wl, c->rng, t.span_lo, t.span_at - t.span_lo);
      const auto [x, y] = TwoKeys(wl, c->rng, t.span_at, t.span_hi - t.span_at);
      v1::CommitRequest req;
      for (uint64_t i : {a, b, x, y}) {
        KeyNameInto(prefix, i, key);
        AddPut(req, key, wl.NextValue(c->rng));
      }
      c->begin = NowNs();
      Send(sh, c, Step::kOneShot, req);
      return;
    }
    case TxnWorkload::kBank: {
      const auto [a, b] = TwoKeys(wl, c->rng, 0, wl.spec().keys);
      KeyNameInto(prefix, a, c->from);
      KeyNameInto(prefix, b, c->to);
      c->begin = NowNs();
      Send(sh, c, Step::kBegin, v1::BeginRequest());
      return;
    }
  }
}

std::optional<int64_t> ParseBalance(const std::string& s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

// The bank's BatchGet answered: the transfer, or an error (a missing or unreadable account).
std::optional<std::string> Transfer(Client* c, const v1::BatchGetResponse& resp) {
  std::optional<int64_t> from, to;
  for (const auto& p : resp.pairs()) {
    if (p.key() == c->from) {
      from = ParseBalance(p.value());
      if (!from) {
        return "account " + c->from + " holds '" + p.value() + "', not a number";
      }
    } else if (p.key() == c->to) {
      to = ParseBalance(p.value());
      if (!to) {
        return "account " + c->to + " holds '" + p.value() + "', not a number";
      }
    }
  }
  if (!from || !to) {
    return "account " + (from ? c->to : c->from) +
           " not found (load the accounts first: loadgen load --system txn --workload bank)";
  }
  std::tie(c->from_balance, c->to_balance) = BankTransfer(*from, *to, kMaxTransfer, c->rng);
  return std::nullopt;
}

// One call finished: the client's next step, its next transaction, or (a transaction that
// failed after Begin) a Rollback.
void Handle(Shared* sh, Call* call, bool ok, Stats* stats) {
  Client* c = call->client;
  const int64_t now = NowNs();
  const grpc::Status st =
      ok ? call->status : grpc::Status(grpc::StatusCode::UNKNOWN, "completion queue failure");
  if (call->step == Step::kRollback) {
    // Whatever it says: a transaction it did not find is gone already.
    Issue(sh, c);
    return;
  }
  auto rollback = [&] {
    v1::RollbackRequest req;
    req.set_txn_id(c->txn_id);
    Send(sh, c, Step::kRollback, req);
  };
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::ABORTED && !sh->load) {
      stats->Abort(sh->window, c->begin, now);
    } else {
      stats->Error(std::string(StepName(call->step)) + ": " + std::to_string(st.error_code()) +
                   " " + st.error_message());
    }
    const bool open =
        call->step == Step::kBatchGet || call->step == Step::kPutFrom || call->step == Step::kPutTo;
    if (open) {
      rollback();
    } else {
      Issue(sh, c);
    }
    return;
  }
  switch (call->step) {
    case Step::kOneShot:
      if (sh->load) {
        sh->loaded.fetch_add(call->keys, std::memory_order_relaxed);
      } else {
        stats->Done(sh->window, OpType::kWrite, c->begin, now);
      }
      Issue(sh, c);
      return;
    case Step::kBegin: {
      c->txn_id = call->begin.txn_id();
      v1::BatchGetRequest req;
      req.set_txn_id(c->txn_id);
      req.add_keys(c->from);
      req.add_keys(c->to);
      Send(sh, c, Step::kBatchGet, req);
      return;
    }
    case Step::kBatchGet: {
      if (auto err = Transfer(c, call->batch_get)) {
        ++stats->misses;
        stats->Error("bank: " + *err);
        rollback();
        return;
      }
      v1::PutRequest req;
      req.set_txn_id(c->txn_id);
      req.set_key(c->from);
      req.set_value(std::to_string(c->from_balance));
      Send(sh, c, Step::kPutFrom, req);
      return;
    }
    case Step::kPutFrom: {
      v1::PutRequest req;
      req.set_txn_id(c->txn_id);
      req.set_key(c->to);
      req.set_value(std::to_string(c->to_balance));
      Send(sh, c, Step::kPutTo, req);
      return;
    }
    case Step::kPutTo: {
      v1::CommitRequest req;
      req.set_txn_id(c->txn_id);
      Send(sh, c, Step::kCommit, req);
      return;
    }
    case Step::kCommit:
      stats->Done(sh->window, OpType::kWrite, c->begin, now);
      Issue(sh, c);
      return;
    case Step::kRollback:
      return;  // handled above
  }
}

void Poll(Shared* sh, grpc::CompletionQueue* cq, Stats* stats) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    Handle(sh, call.get(), ok, stats);
    // After the client's next call (if any) is counted: in flight never reads 0 while a
    // client still has a call to make, so the queues are not shut down under it.
    sh->inflight.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Connects, then starts the clock (the warm-up and measured window) and every client, runs
// `wait` on the calling thread, and stops.
template <typename Wait>
Stats Drive(const std::vector<std::shared_ptr<grpc::Channel>>& channels, int clients, int threads,
            uint64_t seed, double warmup_s, double duration_s, Shared* sh, Wait&& wait) {
  std::vector<std::unique_ptr<v1::Txn::Stub>> stubs;
  stubs.reserve(channels.size());
  for (const auto& ch : channels) {
    stubs.push_back(v1::Txn::NewStub(ch));
  }
  threads = std::max(threads, 1);
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
    cls.push_back(std::make_unique<Client>(s, stubs[static_cast<size_t>(i) % stubs.size()].get(),
                                           cqs[i % threads].get()));
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

std::string Describe(const grpc::Status& st) {
  return std::to_string(st.error_code()) + " " + st.error_message();
}

// After a bank run: every account read in one snapshot, their total against what was loaded.
void CheckBank(v1::Txn::Stub* stub, const Workload& wl, const TxnOptions& txn, int timeout_ms,
               RunOutcome* out) {
  const uint64_t keys = wl.spec().keys;
  auto deadline = [&](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  };
  auto fail = [&](const std::string& what) {
    out->notes.push_back("bank check: " + what);
    out->check_failed = true;
  };
  v1::BeginResponse begun;
  {
    grpc::ClientContext ctx;
    deadline(ctx);
    const grpc::Status st = stub->Begin(&ctx, v1::BeginRequest(), &begun);
    if (!st.ok()) {
      return fail("Begin failed: " + Describe(st));
    }
  }
  uint64_t found = 0;
  int64_t total = 0;
  std::string key;
  for (uint64_t first = 0; first < keys; first += kCheckBatch) {
    v1::BatchGetRequest req;
    req.set_txn_id(begun.txn_id());
    for (uint64_t i = first; i < std::min(keys, first + kCheckBatch); ++i) {
      KeyNameInto(wl.spec().key_prefix, i, key);
      req.add_keys(key);
    }
    v1::BatchGetResponse resp;
    grpc::ClientContext ctx;
    deadline(ctx);
    const grpc::Status st = stub->BatchGet(&ctx, req, &resp);
    if (!st.ok()) {
      return fail("BatchGet failed: " + Describe(st));
    }
    for (const auto& p : resp.pairs()) {
      const std::optional<int64_t> v = ParseBalance(p.value());
      if (!v || *v < 0) {
        return fail("account " + p.key() + " holds '" + p.value() + "'");
      }
      ++found;
      total += *v;
    }
  }
  {
    // A read-only snapshot: nothing to undo, only the node's table entry to free.
    v1::RollbackRequest req;
    req.set_txn_id(begun.txn_id());
    v1::RollbackResponse resp;
    grpc::ClientContext ctx;
    deadline(ctx);
    (void)stub->Rollback(&ctx, req, &resp);
  }
  const int64_t expected = static_cast<int64_t>(keys) * txn.balance;
  const std::string line = std::to_string(found) + " of " + std::to_string(keys) +
                           " accounts found, total " + std::to_string(total) +
                           " (loaded: " + std::to_string(expected) + ")";
  if (found != keys || total != expected) {
    return fail("WRONG: " + line);
  }
  out->notes.push_back("bank check: " + line + ", at start_ts " + std::to_string(begun.start_ts()));
}

}  // namespace

RunOutcome RunTxn(const RunOptions& opts, const Workload& wl, const TxnOptions& txn) {
  Shared sh;
  sh.wl = &wl;
  sh.txn = txn;
  sh.timeout_ms = opts.timeout_ms;
  const uint64_t keys = wl.spec().keys;
  if (txn.workload == TxnWorkload::kMulti4) {
    TxnOptions& t = sh.txn;
    if (t.span_lo == 0 && t.span_at == 0 && t.span_hi == 0) {
      t.span_at = keys / 2;
      t.span_hi = keys;
    }
    if (!(t.span_lo + 2 <= t.span_at && t.span_at + 2 <= t.span_hi && t.span_hi <= keys)) {
      throw std::invalid_argument(
          "multi4 needs --span LO,AT,HI with two keys or more in [LO, AT) and in [AT, HI), and "
          "HI <= --keys");
    }
  }
  if (txn.workload == TxnWorkload::kBank && keys < 2) {
    throw std::invalid_argument("bank needs at least two accounts (--keys)");
  }
  const int clients = std::max(opts.clients, 1);
  const auto channels = ConnectChannels(opts.endpoints, std::clamp(opts.connections, 1, clients));
  RunOutcome out;
  // Channels connect before the clock starts.
  out.stats =
      Drive(channels, clients, opts.threads, opts.seed, opts.warmup_s, opts.duration_s, &sh, [&] {
        SleepUntil(sh.window.start_ns, [] { return false; });
        const double cpu0 = ProcessCpuSeconds();
        SleepUntil(sh.window.end_ns, [] { return false; });
        out.cpu_s = ProcessCpuSeconds() - cpu0;
        sh.stop = true;
        SleepUntil(NowNs() + int64_t{opts.timeout_ms} * 1000000,
                   [&] { return sh.inflight.load() <= 0; });
      });
  out.window = sh.window;
  if (txn.workload == TxnWorkload::kBank) {
    CheckBank(v1::Txn::NewStub(channels.front()).get(), wl, txn, opts.timeout_ms, &out);
  }
  return out;
}

LoadOutcome LoadTxn(const LoadOptions& opts, const Workload& wl, const TxnOptions& txn) {
  Shared sh;
  sh.wl = &wl;
  sh.txn = txn;
  sh.load = true;
  sh.timeout_ms = opts.timeout_ms;
  sh.next = opts.first;
  sh.end = opts.first + opts.count;
  sh.batch = static_cast<uint64_t>(std::max(opts.batch, 1));
  const int clients = std::max(opts.clients, 1);
  const auto channels = ConnectChannels(opts.endpoints, std::clamp(opts.connections, 1, clients));
  const int64_t t0 = NowNs();
  Stats stats = Drive(channels, clients, opts.threads, opts.seed, 0, 0, &sh, [&] {
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
