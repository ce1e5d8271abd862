#include "router/router.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kv/command_keys.h"
#include "kv/state_machine.h"
#include "kv/value_format.h"
#include "store/errors.h"

namespace micedb::router {

// One region request on its way: the body, where it routes, and what became of earlier tries.
struct Router::Call {
  region::RegionRequest req;  // the header's region and epoch are filled in by each attempt
  std::string route_key;      // the engine key that decides the region
  bool write = false;
  kv::ReadMode mode = kv::ReadMode::kLinearizable;
  int64_t deadline_ms = 0;  // on the monotonic clock
  int attempts = 0;
  // Sends made at once after an error that named where to go (a leader, new descriptors),
  // since the last backoff; bounded so that two nodes that disagree cannot loop.
  int immediate = 0;
  NodeId leader_hint;  // a leader named by the last NotLeader, tried next
  // A write whose earlier attempt may have been applied (its forward broke or went unanswered):
  // if no attempt succeeds in time the outcome is unknown, not "nothing applied".
  bool maybe_applied = false;
  // The directory was asked for this key's region and the answer is in the cache (or was none).
  bool asked_directory = false;
  Callback done;
};

namespace {

constexpr int kMaxImmediate = 3;

// The parts of a command that was cut by region, waiting for each other.
struct Join {
  kv::Command cmd;
  size_t total = 0;
  std::vector<std::vector<size_t>> positions;
  std::vector<kv::CommandResult> parts;
  std::mutex mu;
  size_t remaining = 0;
  std::optional<Status> failure;
  kv::KvBackend::Callback done;
};

}  // namespace

Router::Router(RouterOptions options, LocalStore* store, PeerLink* peers, Executor* executor,
               const Clock* clock)
    : options_(options), store_(store), peers_(peers), executor_(executor), clock_(clock) {}

int64_t Router::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->NowMonotonic()).count();
}

void Router::RefreshFromStore() {
  for (const RegionRoute& r : store_->Regions()) cache_.Update(r.desc, r.leader);
}

std::optional<RegionRoute> Router::Route(std::string_view engine_key) {
  if (auto r = cache_.Locate(engine_key)) return r;
  RefreshFromStore();
  return cache_.Locate(engine_key);
}

void Router::Execute(kv::Command cmd, kv::ReadMode mode, Callback done) {
  if (cmd.now_ms() == 0) cmd.set_now_ms(clock_->NowWallMillis());
  const bool write = kv::IsWriteCommand(cmd);
  std::vector<std::string> keys;
  kv::UserKeys(cmd, &keys);
  // Keyless commands (SCAN, DBSIZE, FLUSHALL) act on the region holding the start of the raw
  // keyspace; with one region that is all of it (docs/region-requests.md: fan-out is to come).
  std::string route_key =
      keys.empty() ? std::string(1, kv::kRawKeyPrefix) : kv::EncodeRawKey(keys.front());
  if (keys.size() > 1) {
    std::map<uint64_t, std::vector<size_t>> by_region;
    bool all_known = true;
    for (size_t i = 0; i < keys.size() && all_known; ++i) {
      auto route = Route(kv::EncodeRawKey(keys[i]));
      if (!route) {
        all_known = false;
      } else {
        by_region[route->desc.id()].push_back(i);
      }
    }
    if (all_known && by_region.size() > 1) {
      if (!kv::Splittable(cmd)) {
        return done(Status::InvalidArgument(
            "the keys of this command are in different regions; run it on keys of one region "
            "(multi-region atomic commands need transactions)"));
      }
      counters_.split_requests++;
      auto join = std::make_shared<Join>();
      join->total = keys.size();
      join->done = std::move(done);
      join->remaining = by_region.size();
      join->parts.resize(by_region.size());
      std::vector<kv::Command> parts;
      for (auto& [region, positions] : by_region) {
        parts.push_back(kv::PartOf(cmd, positions));
        join->positions.push_back(std::move(positions));
      }
      join->cmd = std::move(cmd);
      for (size_t i = 0; i < parts.size(); ++i) {
        std::string key = kv::EncodeRawKey(keys[join->positions[i].front()]);
        auto part_done = [join, i](Result<kv::CommandResult> r) {
          Callback finish;
          {
            std::lock_guard<std::mutex> l(join->mu);
            if (!r.ok()) {
              if (!join->failure) join->failure = r.status();
            } else {
              join->parts[i] = std::move(r).value();
            }
            if (--join->remaining == 0) finish = std::move(join->done);
          }
          if (!finish) return;
          if (join->failure) return finish(*join->failure);
          finish(kv::JoinParts(join->cmd, join->total, join->positions, join->parts));
        };
        Launch(std::move(parts[i]), std::move(key), write, mode, std::move(part_done));
      }
      return;
    }
  }
  Launch(std::move(cmd), std::move(route_key), write, mode, std::move(done));
}

void Router::Launch(kv::Command cmd, std::string route_key, bool write, kv::ReadMode mode,
                    Callback done) {
  auto call = std::make_shared<Call>();
  call->write = write;
  call->mode = mode;
  call->route_key = std::move(route_key);
  call->done = std::move(done);
  if (write) {
    // First attempt at this gateway: name it, so that retries are applied at most once.
    call->req.mutable_header()->set_request_id(options_.request_id_base +
                                               next_request_.fetch_add(1));
    call->req.mutable_header()->set_request_ts_ms(clock_->NowWallMillis());
  }
  *call->req.mutable_kv() = std::move(cmd);
  int64_t timeout = options_.request_timeout_ms;
  if (write && options_.slow_write_bytes_per_sec > 0) {
    timeout += static_cast<int64_t>(3 * call->req.kv().ByteSizeLong() * 1000 /
                                    options_.slow_write_bytes_per_sec);
  }
  call->deadline_ms = NowMs() + timeout;
  Attempt(std::move(call));
}

NodeId Router::Elsewhere(const RegionRoute& route, int attempt) const {
  const NodeId self = store_->node_id();
  if (route.leader.valid() && route.leader != self) return route.leader;
  std::vector<NodeId> candidates;
  for (uint64_t v : route.desc.conf_state().voters()) {
    if (NodeId(v) != self) candidates.push_back(NodeId(v));
  }
  if (candidates.empty()) candidates = peers_->Nodes();
  if (candidates.empty()) return NodeId();
  return candidates[static_cast<size_t>(attempt) % candidates.size()];
}

void Router::Attempt(std::shared_ptr<Call> call) {
  call->attempts++;
  std::optional<RegionRoute> route = Route(call->route_key);
  if (!route && directory_ && !call->asked_directory) {
    // Ask the coordinator once per attempt round; its answer goes into the cache.
    call->asked_directory = true;
    counters_.directory_lookups++;
    return directory_->Locate(call->route_key, [this, call](std::optional<RegionRoute> found) {
      if (!found) return RetryLater(call, "the coordinator knows no region for the key");
      cache_.Update(found->desc, found->leader);
      Attempt(call);
    });
  }
  call->asked_directory = false;
  if (!route) return RetryLater(std::move(call), "no region is known for the key");
  region::RequestHeader* h = call->req.mutable_header();
  h->set_region_id(route->desc.id());
  *h->mutable_epoch() = route->desc.epoch();
  h->set_deadline_ms(clock_->NowWallMillis() + std::max<int64_t>(call->deadline_ms - NowMs(), 0));

  const NodeId self = store_->node_id();
  NodeId leader = std::exchange(call->leader_hint, NodeId());
  if (!leader.valid()) leader = store_->LeaderOf(route->desc.id());
  if (!leader.valid()) leader = route->leader;
  const bool leader_elsewhere = leader.valid() && leader != self;

  auto on_local = [this, call](region::RegionResponse resp) {
    if (resp.has_error() && resp.error().has_region_not_found()) {
      // This node holds no replica: ask one that does.
      std::optional<RegionRoute> r = cache_.Get(call->req.header().region_id());
      NodeId to = r ? Elsewhere(*r, call->attempts) : NodeId();
      if (to.valid()) return Forward(call, to);
      return RetryLater(call, resp.error().message());
    }
    OnResponse(call, std::move(resp));
  };

  if (!call->write) {
    if (call->mode == kv::ReadMode::kLocalStale || options_.unsafe_local_reads) {
      return on_local(store_->ReadLocal(call->req));
    }
    // The fast path: this node leads the region and holds its lease.
    if (auto r = store_->ReadUnderLease(call->req)) return OnResponse(call, std::move(*r));
    // With leases the leader answers a read alone: sending it there costs one round trip,
    // where a ReadIndex from here costs that plus the leader's heartbeat round.
    if (store_->lease_reads() && leader_elsewhere) return Forward(std::move(call), leader);
    region::RegionRequest req = call->req;
    return store_->ReadLinearizable(std::move(req), std::move(on_local));
  }
  // When another node is known to lead, go there at once: proposing here would only cost a
  // round of this node's raft loop to learn NotLeader.
  if (leader_elsewhere) return Forward(std::move(call), leader);
  region::RegionRequest req = call->req;
  store_->Propose(std::move(req), std::move(on_local));
}

void Router::OnResponse(std::shared_ptr<Call> call, region::RegionResponse resp) {
  if (!resp.has_error()) return call->done(std::move(*resp.mutable_kv()));
  const region::RegionError& e = resp.error();
  const uint64_t region = call->req.header().region_id();
  switch (e.kind_case()) {
    case region::RegionError::kNotLeader: {
      const NodeId hint(e.not_leader().leader());
      cache_.SetLeader(region, hint);
      if (hint.valid() && call->immediate < kMaxImmediate) {
        call->immediate++;
        call->leader_hint = hint;
        return Attempt(std::move(call));
      }
      return RetryLater(std::move(call), e.message());
    }
    case region::RegionError::kEpochNotMatch:
      // The descriptors carried are the region's current ones: fix the cache and go again.
      for (const auto& d : e.epoch_not_match().current_regions()) cache_.Update(d);
      if (call->immediate < kMaxImmediate) {
        call->immediate++;
        return Attempt(std::move(call));
      }
      return RetryLater(std::move(call), e.message());
    case region::RegionError::kKeyNotInRegion:
    case region::RegionError::kRegionNotFound:
      cache_.Invalidate(region);
      return RetryLater(std::move(call), e.message());
    case region::RegionError::kServerBusy:
      return RetryLater(std::move(call), e.message(),
                        static_cast<int64_t>(e.server_busy().backoff_ms()));
    case region::RegionError::kStaleCommand:
      return RetryLater(std::move(call), e.message());
    case region::RegionError::kTimeout:
      return call->done(Status::TimedOut(e.message()));
    case region::RegionError::kNoSpace:
      // The leader's disk alarm is up: nothing was applied, and retrying at once cannot help.
      return call->done(Status::ResourceExhausted(e.message()));
    case region::RegionError::KIND_NOT_SET:
      break;
  }
  call->done(Status::InvalidArgument(e.message()));
}

void Router::RetryLater(std::shared_ptr<Call> call, std::string_view why, int64_t delay_ms) {
  if (NowMs() >= call->deadline_ms) {
    if (call->maybe_applied) {
      return call->done(Status::TimedOut(
          fmt::format("no answer in time; the write may or may not have been applied ({})", why)));
    }
    return call->done(
        Status::Unavailable(fmt::format("no leader could serve the request in time ({})", why)));
  }
  counters_.retries++;
  call->immediate = 0;
  if (delay_ms < 0) delay_ms = std::min<int64_t>(10 << std::min(call->attempts, 5), 200);
  executor_->After(delay_ms,
                   [this, call = std::move(call)]() mutable { Attempt(std::move(call)); });
}

void Router::Forward(std::shared_ptr<Call> call, NodeId to) {
  counters_.forwarded++;
  transport::ForwardRequest request;
  *request.mutable_request() = call->req;
  request.set_read_mode(static_cast<uint32_t>(call->mode));
  const int64_t timeout = std::max<int64_t>(call->deadline_ms - NowMs(), 1);
  // On the raft stream to that node, not gRPC: cheaper per request (docs/transport.md).
  peers_->Forward(
      to, std::move(request), timeout,
      [this, call, to](Result<transport::ForwardResponse> r) mutable {
        if (!r.ok()) {
          if (r.status().code() == StatusCode::kTimedOut && call->write) {
            return call->done(Status::TimedOut("forwarded write timed out; outcome unknown"));
          }
          // Not sent, or the connection broke: retry, perhaps at a new leader. A
          // write that did arrive is not applied twice (dedup by request id), but it may
          // have been applied.
          if (call->write) call->maybe_applied = true;
          cache_.SetLeader(call->req.header().region_id(), NodeId());
          return RetryLater(std::move(call), r.status().message());
        }
        OnResponse(std::move(call), std::move(*r->mutable_response()));
      });
}

void Router::ServeForward(transport::ForwardRequest request,
                          std::function<void(transport::ForwardResponse)> reply) {
  auto answer = [reply = std::move(reply)](region::RegionResponse resp) {
    transport::ForwardResponse out;
    *out.mutable_response() = std::move(resp);
    reply(std::move(out));
  };
  region::RegionRequest req = std::move(*request.mutable_request());
  if (req.body_case() != region::RegionRequest::kKv) {
    return answer(store::InvalidRequestResponse("only kv requests are forwarded"));
  }
  if (kv::IsWriteCommand(req.kv())) return store_->Propose(std::move(req), std::move(answer));
  const bool stale = request.read_mode() == static_cast<uint32_t>(kv::ReadMode::kLocalStale);
  // Reads run on the executor, not on the transport's I/O thread, which a long one (SCAN,
  // DBSIZE) would hold up for every region's raft traffic.
  executor_->After(0, [this, stale, req = std::move(req), answer = std::move(answer)]() mutable {
    if (stale) return answer(store_->ReadLocal(req));
    if (auto r = store_->ReadUnderLease(req)) return answer(std::move(*r));
    store_->ReadLinearizable(std::move(req), std::move(answer));
  });
}

}  // namespace micedb::router
