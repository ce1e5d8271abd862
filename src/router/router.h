// Router: where the gateway sends kv commands (DESIGN §6; docs/region-requests.md). It finds
// the region of each key in its RegionCache, cuts a command that names keys of several regions
// into one region request per region (and joins the answers in the client's order), sends each
// request to the region's leader -- this node's store, or another node over the peer link --
// and acts on typed errors: NotLeader (go to the leader named), EpochNotMatch (fix the cache
// from the descriptors carried, retry at once), KeyNotInRegion and RegionNotFound (look the
// region up again), ServerBusy and StaleCommand (retry after a backoff), all under the
// request's deadline, so clients see routing errors only when the cluster cannot serve.
//
// A linearizable read tries the one fast path first: the local store answers it on the
// caller's thread if it leads the region and holds its lease.
//
// Thread-safety: Execute and ServeForward may be called from any thread. Callbacks run on the
// caller's, the store's, the transport's or the executor's thread and must not block.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "kv/backend.h"
#include "router/links.h"
#include "router/region_cache.h"

namespace micedb::router {

struct RouterOptions {
  int64_t request_timeout_ms = 8000;  // give up (Unavailable / TimedOut) after this long
  // A write of B bytes gets 3 B / this rate more time (StoreOptions::slow_write_bytes_per_sec):
  // it goes through about three phases that each take up to B / rate (forwarding to the
  // leader, the log write, the apply), one after the other. 0: no more.
  uint64_t slow_write_bytes_per_sec = 0;
  // Deliberately broken (fault tests only): every read is served from local state, as if the
  // client had asked for READONLY stale reads, so reads may be stale. Never enable in use.
  bool unsafe_local_reads = false;
  // Seeds the request ids of writes (at-most-once); differ per process.
  uint64_t request_id_base = 0;
  // A cross-region write's intents may be rolled back by a reader this long after they were
  // prepared, if the write has not committed by then (src/router/cross_region.cc).
  int64_t cross_region_lock_ttl_ms = 3000;
  // The most key and value bytes a walk over the regions (KEYS) gathers for one reply (each
  // region's part is bounded by the state machine's own max_result_bytes); past it the reply
  // is an error (use SCAN). The node sets it to --max-result-bytes.
  uint64_t max_result_bytes = uint64_t{128} << 20;
};

class Router : public kv::KvBackend {
 public:
  // Not owned; must outlive the router. `clock`: deadlines (monotonic) and the wall time
  // stamped on commands and request ids.
  Router(RouterOptions options, LocalStore* store, PeerLink* peers, Executor* executor,
         const Clock* clock);

  // kv::KvBackend. Errors (non-OK Status): Unavailable (no leader in time; nothing applied),
  // TimedOut (a write's outcome is unknown), ResourceExhausted (the leader's disk is full: the
  // write was refused, nothing applied). A multi-key write or MULTI/EXEC whose keys span
  // regions runs atomically as a two-phase commit (cross_region.cc); multi-key reads and
  // pipelined runs (kv.Txn.pipeline) are cut by region. A command that meets a cross-region
  // write's intent resolves it and runs again.
  void Execute(kv::Command cmd, kv::ReadMode mode, Callback done) override;

  // Sends one region request of another body than kv (a transaction's step) to the region
  // holding `route_key` (an engine key), with the same routing, retries and deadline as
  // Execute: `reply` gets the region's response (its body's own errors included), or a failure
  // as Execute's, or Aborted(kKeysSpanRegions) when `keys` (engine keys the request names)
  // no longer lie in one region -- the sender cuts the request again. The body is not
  // deduplicated: a write must be idempotent. timeout_ms 0: the router's request timeout.
  using RegionReply = std::function<void(Result<region::RegionResponse>)>;
  static constexpr std::string_view kKeysSpanRegions = "the request's keys span regions";
  void Send(region::RegionRequest req, std::string route_key, std::vector<std::string> keys,
            bool write, RegionReply reply, int64_t timeout_ms = 0);

  // Runs a request another node's router sent here, on this node's store only (no routing, no
  // retries: the sender does those), and answers through `reply`.
  void ServeForward(transport::ForwardRequest request,
                    std::function<void(transport::ForwardResponse)> reply);

  RegionCache& cache() { return cache_; }
  // The region the cache holds for `engine_key` (refreshed from the local store on a miss).
  std::optional<RegionRoute> Locate(std::string_view engine_key) { return Route(engine_key); }
  // Where to look up regions this node knows nothing of (not owned; null: none). Set before
  // the first Execute.
  void SetDirectory(Directory* directory) { directory_ = directory; }

  // The intent sweep (docs/kv-format.md "The sweep"): resolves an intent whose lock expired
  // and that no command met, as a command meeting it would (CheckIntent at its primary, then
  // commit or roll back, and finish a committed transaction's other intents). `done(true)`
  // once resolved.
  void SweepIntent(const kv::LockInfo& lock, std::function<void(bool)> done) {
    counters_.intents_swept++;
    ResolveLock(lock, std::move(done));
  }

  struct Counters {
    std::atomic<uint64_t> forwarded{0};
    std::atomic<uint64_t> retries{0};
    std::atomic<uint64_t> split_requests{0};        // commands cut into several region requests
    std::atomic<uint64_t> directory_lookups{0};     // regions asked of the coordinator
    std::atomic<uint64_t> cross_region_txns{0};     // writes and EXECs run over several regions
    std::atomic<uint64_t> cross_region_retries{0};  // ... started again (locks met, splits)
    std::atomic<uint64_t> locks_resolved{0};        // intents met and resolved
    std::atomic<uint64_t> intents_swept{0};         // expired intents the sweep took up
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Call;
  struct PipelineRun;
  struct Walk;
  struct CrossTxn;
  // Execute, for the `recut`-th time after a split changed the command's regions.
  void ExecuteCut(kv::Command cmd, kv::ReadMode mode, Callback done, int recut);
  // A pipelined run over several regions (RunPipeline).
  void StartPipeline(kv::Command cmd, kv::ReadMode mode, Callback done);
  // After KeyNotInRegion / EpochNotMatch: runs a multi-key command through ExecuteCut again
  // (true) when that is safe and useful.
  bool MaybeCutAgain(const std::shared_ptr<Call>& call);
  // SCAN, DBSIZE, FLUSHALL across regions (router.cc Walk).
  void RegionWalk(kv::Command cmd, bool write, kv::ReadMode mode, Callback done);
  void WalkStep(const std::shared_ptr<Walk>& w);
  using RegionCallback =
      std::function<void(Result<kv::CommandResult>, const store::RegionDescriptor& served)>;
  // Works through a pipelined run whose keys span regions (router.cc PipelineRun).
  void RunPipeline(const std::shared_ptr<PipelineRun>& run);
  // Starts one region request for `cmd`, routed by `route_key`; a write gets its request id.
  // With `with_region`, that gets the answer instead of `done`, with the region that gave it.
  void Launch(kv::Command cmd, std::string route_key, bool write, kv::ReadMode mode, Callback done,
              RegionCallback with_region = nullptr, int recut = 0);
  // Sends (again) one region request, routed by call->route_key.
  void Attempt(std::shared_ptr<Call> call);
  void OnResponse(std::shared_ptr<Call> call, region::RegionResponse resp);
  void RetryLater(std::shared_ptr<Call> call, std::string_view why, int64_t delay_ms = -1);
  void Forward(std::shared_ptr<Call> call, NodeId to);
  // The route for `engine_key`: the cache, refreshed from the local store on a miss.
  std::optional<RegionRoute> Route(std::string_view engine_key);
  void RefreshFromStore();
  // A node to send a request for `route` to when this node cannot serve it: the leader, else a
  // voter of the region or any known node, varied by `attempt`.
  NodeId Elsewhere(const RegionRoute& route, int attempt) const;
  int64_t NowMs() const;

  // Cross-region writes (cross_region.cc).
  void StartCrossRegion(kv::Command cmd, Callback done);
  bool PlanCross(CrossTxn& t, std::optional<kv::CommandResult>* refused);
  void CrossAttempt(std::shared_ptr<CrossTxn> t);
  void CrossRetry(std::shared_ptr<CrossTxn> t, const kv::LockInfo* lock);
  kv::Command PrepareOf(const CrossTxn& t, size_t part) const;
  void CrossPrepare(std::shared_ptr<CrossTxn> t, size_t first);
  void PreparePart(std::shared_ptr<CrossTxn> t, size_t part, size_t first);
  // Whether `t` began before the transaction holding `holder` (wait-die's order).
  bool Older(const CrossTxn& t, const kv::LockInfo& holder) const;
  void CrossPrepared(std::shared_ptr<CrossTxn> t, size_t first);
  void CrossRollback(std::shared_ptr<CrossTxn> t, std::function<void()> then);
  // Commits or rolls back txn_id's intents on `keys` (user keys), key by key if a split has
  // cut them into several regions; then(true) once every one is resolved.
  void ResolveKeys(uint64_t txn_id, std::vector<std::string> keys, bool commit,
                   std::function<void(bool)> then);
  void CrossCommit(std::shared_ptr<CrossTxn> t);
  // The keys of t's intents that its commit at the primary does not resolve itself.
  std::vector<std::string> CrossOthers(const CrossTxn& t) const;
  // Asks t's primary what became of t: then(1) committed, then(0) rolled back, then(2)
  // pending, then(-1) no answer.
  void CrossStatus(std::shared_ptr<CrossTxn> t, std::function<void(int)> then);
  // After a commit whose outcome is unknown: finishes t (commit or rollback of the rest) once
  // its fate is known, asking up to 5 times a lock TTL apart.
  void CrossSettle(std::shared_ptr<CrossTxn> t, int round);
  void CrossFinish(std::shared_ptr<CrossTxn> t);
  kv::CommandResult CrossJoin(const CrossTxn& t) const;
  // Sends a kv write (an intent step) to the region holding its keys; Aborted when they no
  // longer lie in one region.
  void SendKv(kv::Command cmd, std::function<void(Result<kv::CommandResult>)> done);
  // Finds out what became of the intent's transaction at its primary and commits or rolls
  // back the intent on lock.key(); `then(true)` once it is resolved, `then(false)` when the
  // transaction is still under way (or the steps failed).
  void ResolveLock(const kv::LockInfo& lock, std::function<void(bool)> then);
  // Commits the other intents of a committed transaction (`others`, from its commit record)
  // and drops the record.
  void FinishCommitted(const kv::LockInfo& lock, std::vector<std::string> others);
  // A command answered LOCKED: resolve, then run it again.
  void OnLocked(std::shared_ptr<Call> call, const kv::LockInfo& lock);

  RouterOptions options_;
  LocalStore* store_;
  PeerLink* peers_;
  Executor* executor_;
  const Clock* clock_;
  Directory* directory_ = nullptr;
  RegionCache cache_;
  Counters counters_;
  std::atomic<uint64_t> next_request_{1};
};

}  // namespace micedb::router
