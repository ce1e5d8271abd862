#include "server/cluster_backend.h"

#include <fmt/format.h>

#include "common/clock.h"
#include "common/logging.h"
#include "common/random.h"
#include "kv/state_machine.h"
#include "micedb/transport.grpc.pb.h"

namespace micedb::server {

struct ClusterBackend::Request {
  kv::Command cmd;
  std::string encoded;
  kv::ReadMode mode;
  bool write;
  uint32_t hops;
  int64_t deadline_ms;
  int attempts = 0;
  Callback done;
};

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::Get()->NowMonotonic())
      .count();
}

// The first key a command names, for routing. Empty for keyless commands.
std::string FirstKey(const kv::Command& c) {
  switch (c.op_case()) {
    case kv::Command::kGet:
      return c.get().key();
    case kv::Command::kSet:
      return c.set().key();
    case kv::Command::kIncrby:
      return c.incrby().key();
    case kv::Command::kAppend:
      return c.append().key();
    case kv::Command::kStrlen:
      return c.strlen().key();
    case kv::Command::kGetrange:
      return c.getrange().key();
    case kv::Command::kTtl:
      return c.ttl().key();
    case kv::Command::kType:
      return c.type().key();
    case kv::Command::kExpireAt:
      return c.expire_at().key();
    case kv::Command::kPersist:
      return c.persist().key();
    case kv::Command::kCompareAndSwap:
      return c.compare_and_swap().key();
    default:
      return "";
  }
}

// A state machine result as the caller gets it.
Result<kv::CommandResult> Decode(Result<std::string> encoded) {
  if (!encoded.ok()) return encoded.status();
  kv::CommandResult r;
  if (!r.ParseFromString(*encoded)) return Status::Internal("unparsable result");
  return r;
}

}  // namespace

ClusterBackend::ClusterBackend(RouterOptions options, store::Store* store,
                               transport::PeerTransport* transport)
    : options_(options),
      store_(store),
      transport_(transport),
      work_(io_.get_executor()),
      request_id_base_(Random(static_cast<uint64_t>(SystemClock::Get()->NowMonotonic().count()) ^
                              (store->node_id().value() << 48) ^ ::getpid())
                           .Next64()) {
  if (options_.unsafe_local_reads) {
    GetLogger("server")->warn(
        "--testing-unsafe-local-reads: reads skip ReadIndex and may return stale data");
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "router");
    io_.run();
  });
}

ClusterBackend::~ClusterBackend() { Stop(); }

void ClusterBackend::Stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  io_.stop();
  thread_.join();
}

RegionId ClusterBackend::RouteOf(const kv::Command& cmd) const {
  // Raw keys live under 'r' (docs/kv-format.md). Until regions split, one region holds all.
  auto region = store_->RegionForKey("r" + FirstKey(cmd));
  return region.value_or(RegionId(1));
}

void ClusterBackend::Execute(kv::Command cmd, kv::ReadMode mode, Callback done) {
  ExecuteForwarded(std::move(cmd), mode, 0, std::move(done));
}

void ClusterBackend::ExecuteForwarded(kv::Command cmd, kv::ReadMode mode, uint32_t hops,
                                      Callback done) {
  const bool write = kv::IsWriteCommand(cmd);
  if (write && cmd.request_id() == 0) {
    // First attempt at this gateway: name it, so that retries are applied at most once.
    cmd.set_request_id(request_id_base_ + next_request_.fetch_add(1));
    cmd.set_request_ts_ms(SystemClock::Get()->NowWallMillis());
  }
  std::string encoded = cmd.SerializeAsString();
  if (!write && mode == kv::ReadMode::kLinearizable && !options_.unsafe_local_reads) {
    // The leader holding its lease answers here, on the caller's thread, without a round of
    // the raft loop.
    if (auto r = store_->ReadUnderLease(RouteOf(cmd), encoded)) return done(Decode(std::move(*r)));
  }
  auto req = std::make_shared<Request>();
  req->write = write;
  req->encoded = std::move(encoded);
  req->cmd = std::move(cmd);
  req->mode = mode;
  req->hops = hops;
  req->deadline_ms = NowMs() + options_.request_timeout_ms;
  req->done = std::move(done);
  if (!req->write && (mode == kv::ReadMode::kLocalStale || options_.unsafe_local_reads)) {
    auto r = store_->ReadLocal(RouteOf(req->cmd), req->encoded);
    if (r.ok() || r.status().code() != StatusCode::kNotFound) return Finish(req, std::move(r));
    // The region is not here: fall through to the routed path.
  }
  Attempt(std::move(req));
}

void ClusterBackend::ServeForward(const transport::ForwardRequest& request,
                                  std::function<void(transport::ForwardResponse)> reply) {
  transport::ForwardResponse resp;
  kv::Command cmd;
  if (!cmd.ParseFromString(request.command())) {
    resp.set_code(static_cast<uint32_t>(StatusCode::kInvalidArgument));
    resp.set_message("forwarded command does not parse");
    return reply(std::move(resp));
  }
  auto mode = request.read_mode() == static_cast<uint32_t>(kv::ReadMode::kLocalStale)
                  ? kv::ReadMode::kLocalStale
                  : kv::ReadMode::kLinearizable;
  Callback done = [reply = std::move(reply)](Result<kv::CommandResult> r) {
    transport::ForwardResponse resp;
    if (r.ok()) {
      resp.set_code(0);
      resp.set_result(r->SerializeAsString());
    } else {
      resp.set_code(static_cast<uint32_t>(r.status().code()));
      resp.set_message(std::string(r.status().message()));
    }
    reply(std::move(resp));
  };
  if (!kv::IsWriteCommand(cmd)) {
    // A read may run here at once under the lease: not on the transport's I/O thread, which
    // a long one (SCAN, DBSIZE) would hold up for every region's raft traffic.
    asio::post(io_, [this, cmd = std::move(cmd), mode, hops = request.hops(),
                     done = std::move(done)]() mutable {
      ExecuteForwarded(std::move(cmd), mode, hops, std::move(done));
    });
    return;
  }
  ExecuteForwarded(std::move(cmd), mode, request.hops(), std::move(done));
}

void ClusterBackend::Finish(std::shared_ptr<Request> req, Result<std::string> encoded) {
  req->done(Decode(std::move(encoded)));
}

NodeId ClusterBackend::LeaderElsewhere(RegionId region, const Request& req) const {
  NodeId leader = store_->LeaderOf(region);
  if (leader.valid() && leader != store_->node_id() &&
      req.hops < static_cast<uint32_t>(options_.max_forward_hops)) {
    return leader;
  }
  return NodeId();
}

void ClusterBackend::Attempt(std::shared_ptr<Request> req) {
  req->attempts++;
  RegionId region = RouteOf(req->cmd);
  auto on_result = [this, req, region](Result<std::string> r) {
    if (r.ok()) return Finish(req, std::move(r));
    switch (r.status().code()) {
      case StatusCode::kNotLeader: {
        if (NodeId leader = LeaderElsewhere(region, *req); leader.valid()) {
          return Forward(req, leader);
        }
        return RetryLater(req, r.status());
      }
      case StatusCode::kNotFound: {
        // This node holds no replica: ask one that does.
        for (const auto& [id, addr] : store_->Addresses()) {
          if (id != store_->node_id() &&
              req->hops < static_cast<uint32_t>(options_.max_forward_hops)) {
            return Forward(req, id);
          }
        }
        return req->done(Status::Unavailable("no replica of the region is known"));
      }
      case StatusCode::kUnavailable:
      case StatusCode::kAborted:  // the entry was replaced: definitely not applied
        return RetryLater(req, r.status());
      default:
        return req->done(r.status());
    }
  };
  if (req->write) {
    // When another node is known to lead, go there at once: proposing here would only cost
    // a round of this node's raft loop to learn NotLeader.
    if (NodeId leader = LeaderElsewhere(region, *req); leader.valid()) {
      return Forward(req, leader);
    }
    store_->Propose(region, req->encoded, std::move(on_result));
  } else {
    // A retry, perhaps now at a leader with a lease.
    if (req->attempts > 1 && !options_.unsafe_local_reads) {
      if (auto r = store_->ReadUnderLease(region, req->encoded)) return Finish(req, std::move(*r));
    }
    // With leases, the leader answers a read alone: sending it there costs one round trip,
    // where a ReadIndex from here costs that plus the leader's heartbeat round.
    if (NodeId leader = LeaderElsewhere(region, *req); store_->lease_reads() && leader.valid()) {
      return Forward(req, leader);
    }
    store_->ReadLinearizable(region, req->encoded, std::move(on_result));
  }
}

void ClusterBackend::RetryLater(std::shared_ptr<Request> req, const Status& why) {
  int64_t now = NowMs();
  if (now >= req->deadline_ms) {
    return req->done(Status::Unavailable(
        fmt::format("no leader could serve the request in time ({})", why.message())));
  }
  counters_.retries++;
  int64_t delay = std::min<int64_t>(10 << std::min(req->attempts, 5), 200);
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(delay));
  timer->async_wait([this, req, timer](std::error_code ec) {
    if (ec) return req->done(Status::Unavailable("node is stopping"));
    Attempt(req);
  });
}

void ClusterBackend::Forward(std::shared_ptr<Request> req, NodeId to) {
  counters_.forwarded++;
  transport::ForwardRequest request;
  request.set_command(req->encoded);
  request.set_read_mode(static_cast<uint32_t>(req->mode));
  request.set_hops(req->hops + 1);
  auto timeout = std::chrono::milliseconds(std::max<int64_t>(req->deadline_ms - NowMs(), 1));
  // On the raft stream to that node, not gRPC: cheaper per request (docs/transport.md).
  transport_->Forward(
      to, std::move(request), timeout, [this, req](Result<transport::ForwardResponse> r) {
        if (!r.ok()) {
          if (r.status().code() == StatusCode::kTimedOut && req->write) {
            return req->done(Status::TimedOut("forwarded write timed out; outcome unknown"));
          }
          // Not sent, or the connection broke: retry, perhaps at a new leader. A write that
          // did arrive is not applied twice (its request id is deduplicated at apply).
          return RetryLater(req, r.status());
        }
        auto code = static_cast<StatusCode>(r->code());
        if (code == StatusCode::kOk) return Finish(req, std::move(*r->mutable_result()));
        Status remote(code, r->message());
        if (code == StatusCode::kNotLeader || code == StatusCode::kUnavailable ||
            code == StatusCode::kAborted) {
          return RetryLater(req, remote);
        }
        req->done(remote);
      });
}

}  // namespace micedb::server
