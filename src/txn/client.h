// The transaction client (docs/transactions.md §3-§5): what a gateway (the gRPC service, SQL,
// multi-key Redis commands) uses to run snapshot-isolation transactions over many regions.
//
// A transaction takes start_ts from the timestamp oracle at Begin, reads at start_ts (its own
// buffered writes first), buffers its writes, and at Commit runs two-phase commit: prewrite of
// every key, one request per region, in parallel (the primary is the smallest key); commit_ts
// from the oracle; commit of the primary -- the moment the transaction commits -- and then of
// the secondaries, in the background (a reader that meets a secondary's lock first finds the
// primary committed and commits the lock itself).
//
// A read or prewrite that meets another transaction's lock resolves it (§4): CheckTxnStatus at
// the lock's primary (which rolls the lock back once its TTL has run out), then ResolveLock of
// the key, and tries again; a live lock is waited out with backoff, under the call's deadline.
// The outcome of each transaction checked is cached for a while.
//
// Errors (Status): Aborted -- the transaction cannot commit (a write conflict, or it was rolled
// back by someone resolving its expired lock); retry it from Begin. The message names the key,
// the other transaction's start_ts and what to do; Txn::conflict() has them apart. TimedOut --
// the primary's commit got no answer: the outcome is unknown. Unavailable -- no region could
// serve in time (nothing committed). InvalidArgument -- a bad request.
//
// Thread-safety: TxnClient's methods may be called from any thread; a Txn is used by one
// caller at a time (one call in flight). Callbacks run on the transport's or the executor's
// threads and must not block. Work in flight (secondary commits) keeps what it needs alive.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/executor.h"
#include "common/result.h"
#include "micedb/txn.pb.h"

namespace micedb::txn {

// What the client needs of the node: the oracle and the router (RouterTransport adapts them;
// tests use fakes).
class TxnTransport {
 public:
  virtual ~TxnTransport() = default;
  // `count` (>= 1) consecutive fresh timestamps in one draw: `done` gets the first.
  virtual void GetTimestamps(uint32_t count, std::function<void(Result<uint64_t>)> done) = 0;
  // A fresh timestamp from the oracle.
  void GetTimestamp(std::function<void(Result<uint64_t>)> done) {
    GetTimestamps(1, std::move(done));
  }
  // The engine-key bounds [start, end) (end empty: no end) of the region the routing cache
  // holds for `engine_key`; nullopt when it knows none (the key is then sent on its own).
  virtual std::optional<std::pair<std::string, std::string>> RegionOf(
      std::string_view engine_key) = 0;
  // Sends `req` to the region holding `route_key` (an engine key); `keys`: the engine keys it
  // names, all in that region, or Aborted: they are not (a split), cut the request again.
  // `done` gets the body's response, InvalidArgument when the region refused it as malformed,
  // or the router's failure (Unavailable: nothing applied; TimedOut: a write's outcome is
  // unknown).
  // `timeout_ms`: the time the caller has left (> 0).
  virtual void Send(pb::TxnRequest req, std::string route_key, std::vector<std::string> keys,
                    bool write, int64_t timeout_ms,
                    std::function<void(Result<pb::TxnResponse>)> done) = 0;
};

struct TxnClientOptions {
  // How long a read, a prewrite or a commit may take, lock waits included.
  int64_t op_timeout_ms = 20000;
  // First wait before retrying after a live lock; doubles up to max_backoff_ms.
  int64_t min_backoff_ms = 5;
  int64_t max_backoff_ms = 500;
  // Scan page size asked of each region.
  uint32_t scan_page = 256;
  // Outcomes of checked transactions kept (start_ts -> committed at / rolled back).
  size_t status_cache_entries = 4096;
  // Most times one request is cut again after the regions it spanned changed.
  int max_recuts = 16;
  // While a commit is under way, its primary's lock TTL is raised this often (TxnHeartBeat);
  // 0: never.
  int64_t heartbeat_ms = 1000;
  // A transaction whose keys all lie in one region (as the router's cache says) and fit one
  // request tries a one-phase commit (docs/transactions.md §3a) before two phases.
  bool one_pc = true;
  // A transaction over several regions of at most kAsyncMaxKeys keys (their bytes within
  // kAsyncMaxKeyBytes) commits asynchronously (docs/transactions.md §3b): it is committed once
  // every prewrite applied, and Commit answers then, at the largest min_commit_ts the leaders
  // computed; the commits follow in the background. A leader that cannot vouch for one makes
  // its part two-phase, and the client goes on in two phases. (Off here, for the tests that
  // drive two phases; a node turns it on unless --txn-async-commit false.)
  bool async_commit = false;
  static constexpr size_t kAsyncMaxKeys = 256;
  static constexpr size_t kAsyncMaxKeyBytes = 64 * 1024;
  // An async prewrite's max_commit_ts: now (by this client's clock, and no less than start_ts)
  // plus this. A leader whose min_commit_ts would pass it falls back to two phases.
  static constexpr int64_t kAsyncSafeWindowMs = 2000;
};

// The key and the other transaction of a write conflict that aborted a Commit.
struct Conflict {
  std::string key;
  uint64_t conflict_start_ts = 0;
  uint64_t conflict_commit_ts = 0;
};

struct TxnClientCounters {
  std::atomic<uint64_t> begun{0};
  std::atomic<uint64_t> committed{0};
  std::atomic<uint64_t> aborted{0};  // commits refused (conflicts, rolled back by others)
  std::atomic<uint64_t> locks_met{0};
  std::atomic<uint64_t> locks_resolved{0};
  std::atomic<uint64_t> status_checks{0};
  std::atomic<uint64_t> lock_waits{0};  // backoffs behind a live lock
  std::atomic<uint64_t> recuts{0};      // requests cut again after a split
  std::atomic<uint64_t> heartbeats{0};  // TxnHeartBeats sent for slow commits
  std::atomic<uint64_t> one_pc_tried{0};
  std::atomic<uint64_t> one_pc_committed{0};  // the rest of the tried fell back to two phases
  std::atomic<uint64_t> async_tried{0};
  std::atomic<uint64_t> async_committed{0};  // answered once the prewrites applied
  std::atomic<uint64_t> async_fallbacks{0};  // a leader made its part two-phase
  // Async transactions whose outcome was found through their keys' states
  // (CheckSecondaryLocks): met as locks past their TTL, or after a prewrite that failed.
  std::atomic<uint64_t> async_checks{0};
  // Live async transactions met as locks whose keys were read for the commit point (a
  // committed one is then resolved at once, not waited for).
  std::atomic<uint64_t> async_peeks{0};
};

class ClientCore;

class Txn : public std::enable_shared_from_this<Txn> {
 public:
  uint64_t start_ts() const { return start_ts_; }

  // The value of `key` at start_ts, this transaction's own writes included (nullopt: none).
  void Get(std::string key, std::function<void(Result<std::optional<std::string>>)> done);
  // The values of `keys` (pairs for the keys found, in the order asked).
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  void BatchGet(std::vector<std::string> keys, std::function<void(Result<Pairs>)> done);
  // The keys in [start, end) (end empty: no end) at start_ts with this transaction's writes,
  // at most `limit` (> 0) of them, in key order.
  void Scan(std::string start, std::string end, size_t limit,
            std::function<void(Result<Pairs>)> done);

  // Buffered until Commit. InvalidArgument for a read-only transaction (BeginAt) or after
  // Commit or Rollback.
  Status Put(std::string key, std::string value);
  Status Delete(std::string key);
  bool read_only() const { return read_only_; }
  size_t pending_writes() const;

  // Two-phase commit of the buffered writes (none: nothing to do, OK). `done` gets the
  // commit_ts (0 for a transaction that wrote nothing) or an error (see the file comment).
  void Commit(std::function<void(Result<uint64_t>)> done);
  // Drops the buffered writes (nothing was written to the cluster before Commit).
  void Rollback();
  // After a Commit that failed with a write conflict: the key and the other transaction.
  std::optional<Conflict> conflict() const;

 private:
  friend class TxnClient;
  Txn(std::shared_ptr<ClientCore> core, uint64_t start_ts, bool read_only, uint64_t one_pc_ts = 0);

 public:
  ~Txn();

 private:
  // Commit's prewrite phase onwards; one_pc_ts not 0: try to commit in one phase at it;
  // async: try async commit (§3b).
  void Prewrite(std::shared_ptr<std::vector<pb::Mutation>> muts, std::vector<std::string> ekeys,
                uint64_t one_pc_ts, bool async, std::function<void(Result<uint64_t>)> done);
  static bool AsyncFits(const std::vector<pb::Mutation>& muts);
  static bool InOneRegion(ClientCore* core, const std::vector<std::string>& ekeys);

  std::shared_ptr<ClientCore> core_;
  const uint64_t start_ts_;
  // A snapshot at a chosen timestamp: it must never write (a chosen start_ts could be another
  // transaction's, or a commit's).
  const bool read_only_;
  // Not 0: a commit_ts drawn with start_ts (BeginWrite) for a one-phase commit.
  const uint64_t one_pc_ts_;
  mutable std::mutex mu_;
  std::map<std::string, std::optional<std::string>> writes_;  // nullopt: delete
  bool finished_ = false;
  std::optional<Conflict> conflict_;
};

class TxnClient {
 public:
  // Not owned; all must outlive the client and any work it started.
  TxnClient(TxnTransport* transport, Executor* executor, const Clock* clock,
            TxnClientOptions options = {});
  ~TxnClient();

  void Begin(std::function<void(Result<std::shared_ptr<Txn>>)> done);
  // Begin for a transaction that only writes, and commits at once (a one-shot write): the
  // oracle's one draw gives start_ts and, the next timestamp, a commit_ts for a one-phase
  // commit, so that the commit needs no draw of its own (a two-phase commit still draws one
  // after its prewrites). Reads in it see the snapshot at start_ts as in any transaction.
  void BeginWrite(std::function<void(Result<std::shared_ptr<Txn>>)> done);
  // A read-only transaction reading at `read_ts`, a timestamp taken earlier (inside the GC
  // window): InvalidArgument when read_ts is 0 or above a fresh timestamp (a snapshot in the
  // future would change under the reader).
  void BeginAt(uint64_t read_ts, std::function<void(Result<std::shared_ptr<Txn>>)> done);

  const TxnClientCounters& counters() const;

  // The smallest start_ts (or read_ts) of the transactions alive here, 0 when none: GC's safe
  // point never passes it (docs/transactions.md §8).
  uint64_t OldestRunning() const;
  // The GC safe point as this node knows it: BeginAt refuses to read below it.
  void RaiseSafePoint(uint64_t sp);

  // Garbage collection of [start, end) (user keys; end empty: no end) at safe_point: first
  // every lock of a transaction that started below it is resolved (through its primary,
  // waiting out live ones), then the versions no read at or above it can see are removed,
  // region by region (raft entries). `done` gets the records removed.
  void CollectGarbage(std::string start, std::string end, uint64_t safe_point,
                      std::function<void(Result<uint64_t>)> done);
  // Only the first half, over every transactional key: every lock of a transaction that
  // started below safe_point resolved. Run by every node before it collects its regions: a
  // primary's commit record in one region must not go while a lock of its transaction is
  // left in another (a reader would then roll the secondary back).
  void ResolveLocksBelow(uint64_t safe_point, std::function<void(Status)> done);

 private:
  void RunGc(std::string start, std::string end, uint64_t safe_point, bool resolve_only,
             std::function<void(Result<uint64_t>)> done);

  std::shared_ptr<ClientCore> core_;
};

}  // namespace micedb::txn
