// CoordinatorClient: how a node (its gateway, its store's heartbeats, `micedb` commands through
// it) calls the coordinator (docs/coordinator.md). It knows the coordinator members, sends each
// call to the leader it last heard of, follows not_leader hints, tries the other members when
// one does not answer, and backs off on `retry`, all under the call's deadline.
//
// Timestamps: GetTimestamp folds every caller that waits into ONE in-flight TSO request per
// client (a request for n timestamps serves n callers), so the coordinator sees one request per
// round trip however many callers there are. A caller's timestamps strictly increase: each
// call is answered from a later request than the one before it.
//
// Thread-safety: every method may be called from any thread; callbacks run on the sender's
// or the executor's thread and must not block.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/executor.h"
#include "common/result.h"
#include "common/strong_id.h"
#include "common/thread_annotations.h"
#include "micedb/coordinator.pb.h"
#include "micedb/store.pb.h"

namespace micedb::coordinator {

// Delivers a call to one coordinator node.
class CoordSender {
 public:
  virtual ~CoordSender() = default;
  using Done = std::function<void(Result<CoordResponse>)>;
  // `done` gets the node's answer; Unavailable when it could not be reached (the call may
  // have run there), TimedOut after timeout_ms.
  virtual void Send(NodeId to, CoordRequest req, int64_t timeout_ms, Done done) = 0;
};

struct CoordinatorClientOptions {
  int64_t timeout_ms = 5000;          // a call gives up after this
  int64_t attempt_timeout_ms = 1000;  // one node gets this long to answer
  int64_t backoff_ms = 20;            // before retrying after `retry` or a round of failures
  const Clock* clock = nullptr;       // deadlines (monotonic); null: the system clock
};

struct CoordinatorClientCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> tso_requests{0};
  std::atomic<uint64_t> tso_timestamps{0};
  std::atomic<uint64_t> tso_failures{0};
};

class CoordinatorClient {
 public:
  using Done = std::function<void(Result<CoordResponse>)>;
  // Not owned; must outlive the client.
  CoordinatorClient(CoordinatorClientOptions options, CoordSender* sender, Executor* executor);

  // The coordinator members (id and peer address). The leader hint is kept while it is one.
  void SetMembers(std::vector<store::NodeAddress> members) EXCLUDES(mu_);
  std::vector<store::NodeAddress> members() const EXCLUDES(mu_);
  NodeId leader() const EXCLUDES(mu_);

  // Sends `req` to the coordinator's leader. `done` gets the answer; an answer carrying an
  // error that retrying cannot fix (a refused join, a bad argument) comes back as it is.
  // Errors: Unavailable (no coordinator answered before the deadline, or none is known).
  void Call(CoordRequest req, Done done);
  // As Call, with its own deadline.
  void Call(CoordRequest req, int64_t timeout_ms, Done done);

  // One timestamp from the oracle.
  void GetTimestamp(std::function<void(Result<uint64_t>)> done) EXCLUDES(mu_);
  // `count` (>= 1) consecutive timestamps in one draw: `done` gets the first.
  void GetTimestamps(uint32_t count, std::function<void(Result<uint64_t>)> done) EXCLUDES(mu_);

  const CoordinatorClientCounters& counters() const { return counters_; }

 private:
  struct CallState;
  void Attempt(const std::shared_ptr<CallState>& call) EXCLUDES(mu_);
  void OnAnswer(const std::shared_ptr<CallState>& call, NodeId target, Result<CoordResponse> r)
      EXCLUDES(mu_);
  void Backoff(const std::shared_ptr<CallState>& call);
  // A caller waiting for `count` timestamps.
  struct TsoWaiter {
    uint32_t count = 1;
    std::function<void(Result<uint64_t>)> done;
  };
  // Sends the waiting TSO callers as one request (tso_in_flight_ is set).
  void SendTso(std::vector<TsoWaiter> batch);
  int64_t NowMs() const;

  const CoordinatorClientOptions options_;
  CoordSender* const sender_;
  Executor* const executor_;
  const Clock* clock_;
  CoordinatorClientCounters counters_;

  mutable std::mutex mu_;
  std::vector<store::NodeAddress> members_ GUARDED_BY(mu_);
  NodeId leader_ GUARDED_BY(mu_);
  size_t next_member_ GUARDED_BY(mu_) = 0;
  bool tso_in_flight_ GUARDED_BY(mu_) = false;
  std::vector<TsoWaiter> tso_waiting_ GUARDED_BY(mu_);
};

}  // namespace micedb::coordinator
