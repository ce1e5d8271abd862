// ClusterBackend: the router between the KV front ends and the replicated store (DESIGN §6).
// Any node accepts any command: a write is proposed where the region's leader is, here or
// forwarded over gRPC (NodeService.Forward); a linearizable read runs ReadIndex through the
// local replica (followers included) and reads once the read index is applied here. Routing
// errors (no leader yet, leader moved, entry replaced by a new leader) are retried with
// backoff until the request's deadline, so clients see them only when the cluster cannot
// serve at all.
//
// Thread-safety: Execute may be called from any thread.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <thread>

#include "kv/backend.h"
#include "store/store.h"
#include "transport/peer_transport.h"

namespace micedb::server {

struct RouterOptions {
  int64_t request_timeout_ms = 8000;  // give up (Unavailable / TimedOut) after this long
  int max_forward_hops = 2;           // a forwarded request is not forwarded again past this
  // Deliberately broken (fault tests only): every read is served from local state, as if the
  // client had asked for READONLY stale reads, so reads may be stale. Never enable in use.
  bool unsafe_local_reads = false;
};

class ClusterBackend : public kv::KvBackend {
 public:
  // Not owned; must outlive the backend.
  ClusterBackend(RouterOptions options, store::Store* store, transport::PeerTransport* transport);
  ~ClusterBackend() override;

  void Execute(kv::Command cmd, kv::ReadMode mode, Callback done) override;

  // Runs a command that another node forwarded here (`hops` forwards so far).
  void ExecuteForwarded(kv::Command cmd, kv::ReadMode mode, uint32_t hops, Callback done);
  // The same for a request as it arrives on the wire; `reply` gets the answer to send back.
  void ServeForward(const transport::ForwardRequest& request,
                    std::function<void(transport::ForwardResponse)> reply);

  void Stop();

  struct Counters {
    std::atomic<uint64_t> forwarded{0};
    std::atomic<uint64_t> retries{0};
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Request;
  void Attempt(std::shared_ptr<Request> req);
  void RetryLater(std::shared_ptr<Request> req, const Status& why);
  void Forward(std::shared_ptr<Request> req, NodeId to);
  void Finish(std::shared_ptr<Request> req, Result<std::string> encoded);
  // The leader of `region` when it is another node that req may still be forwarded to.
  NodeId LeaderElsewhere(RegionId region, const Request& req) const;
  RegionId RouteOf(const kv::Command& cmd) const;

  RouterOptions options_;
  store::Store* store_;
  transport::PeerTransport* transport_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  Counters counters_;
  const uint64_t request_id_base_;  // random per process, so ids differ across nodes/restarts
  std::atomic<uint64_t> next_request_{1};
};

}  // namespace micedb::server
