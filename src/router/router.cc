#include "router/router.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kv/command_keys.h"
#include "kv/command_result.h"
#include "kv/state_machine.h"
#include "kv/value_format.h"
#include "store/apply.h"
#include "store/errors.h"
#include "store/keys.h"

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
  // The region (as routed, with its epoch) of the latest attempt: an answer without error came
  // from exactly that range, since the replica checked the epoch (RegionWalk uses it).
  std::shared_ptr<store::RegionDescriptor> served;
  // How many times the command was cut again after a split or merge changed its regions.
  int recut = 0;
  // The directory was asked for this key's region and the answer is in the cache (or was none).
  bool asked_directory = false;
  Callback done;
  // A request of another body than kv (Send): the whole response goes here instead of `done`,
  // after the keys were checked against each region it is sent to.
  RegionReply reply;
  std::vector<std::string> keys;  // Send's engine keys
  // Answers with a failure, through whichever callback the call has.
  void Fail(Status st) {
    if (reply) return reply(std::move(st));
    done(std::move(st));
  }
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

// What a pipelined command gets when the part of the run it was in failed as a whole.
kv::CommandResult StatusResult(const Status& st) {
  switch (st.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kNotLeader:
    case StatusCode::kBusy:
      return kv::ErrorResult(kv::KvError::UNAVAILABLE, st.message());
    case StatusCode::kTimedOut:
      return kv::ErrorResult(kv::KvError::OUTCOME_UNKNOWN, st.message());
    case StatusCode::kResourceExhausted:
      return kv::ErrorResult(kv::KvError::NO_SPACE, st.message());
    case StatusCode::kInvalidArgument:
      return kv::ErrorResult(kv::KvError::INVALID_ARGUMENT, st.message());
    default:
      return kv::ErrorResult(kv::KvError::INTERNAL, st.ToString());
  }
}

}  // namespace

// A pipelined run whose keys span regions (kv.Txn.pipeline), worked through in phases: each
// phase is the longest stretch of commands that each stay in one region, sent as one txn per
// region (so each key's commands keep their order); a command whose keys span regions runs
// alone between phases, through Execute (a read is cut, a write refused).
struct Router::PipelineRun {
  std::vector<kv::Command> commands;
  int64_t now_ms = 0;
  kv::ReadMode mode = kv::ReadMode::kLinearizable;
  std::mutex mu;
  std::vector<kv::CommandResult> results;
  size_t next = 0;       // the first command not run yet
  size_t remaining = 0;  // parts of the current phase not answered yet
  Callback done;
};

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

namespace {

// Commands that act on the whole keyspace (the router walks the regions for them).
bool Keyless(const kv::Command& c) { return c.has_scan() || c.has_dbsize() || c.has_flushall(); }

bool TxnHasKeyless(const kv::Command& c) {
  if (!c.has_txn()) return false;
  for (const kv::Command& one : c.txn().commands()) {
    if (Keyless(one)) return true;
  }
  return false;
}

}  // namespace

void Router::Execute(kv::Command cmd, kv::ReadMode mode, Callback done) {
  ExecuteCut(std::move(cmd), mode, std::move(done), 0);
}

void Router::StartPipeline(kv::Command cmd, kv::ReadMode mode, Callback done) {
  auto run = std::make_shared<PipelineRun>();
  run->now_ms = cmd.now_ms();
  run->mode = mode;
  run->done = std::move(done);
  for (kv::Command& c : *cmd.mutable_txn()->mutable_commands()) {
    run->commands.push_back(std::move(c));
  }
  run->results.resize(run->commands.size());
  counters_.split_requests++;
  RunPipeline(std::move(run));
}

void Router::ExecuteCut(kv::Command cmd, kv::ReadMode mode, Callback done, int recut) {
  if (cmd.now_ms() == 0) cmd.set_now_ms(clock_->NowWallMillis());
  const bool write = kv::IsWriteCommand(cmd);
  std::vector<std::string> keys;
  kv::UserKeys(cmd, &keys);
  // Keyless commands visit the regions in key order (docs/sharding.md §4).
  if (cmd.has_scan() || cmd.has_dbsize() || cmd.has_flushall()) {
    return RegionWalk(std::move(cmd), write, mode, std::move(done));
  }
  const bool pipeline = cmd.has_txn() && cmd.txn().pipeline() && cmd.txn().watched_size() == 0;
  if (TxnHasKeyless(cmd)) {
    // DBSIZE, KEYS or FLUSHALL in a run: over every region, so not inside one region's txn.
    auto first = Route(std::string(1, kv::kRawKeyPrefix));
    const bool several = !first || store::EngineRangeEnd(first->desc.end_key()) <
                                       std::string(1, kv::kRawKeyPrefix + 1);
    if (several && pipeline) return StartPipeline(std::move(cmd), mode, std::move(done));
    if (several) {
      return done(kv::ErrorResult(
          kv::KvError::CROSS_REGION,
          "MULTI/EXEC with DBSIZE, KEYS, SCAN or FLUSHALL acts on every region, and the keyspace "
          "has several; run it outside MULTI"));
    }
  }
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
      if (pipeline) return StartPipeline(std::move(cmd), mode, std::move(done));
      // A write cut in parts runs as one two-phase commit (cross_region.cc).
      if (!kv::Splittable(cmd)) return StartCrossRegion(std::move(cmd), std::move(done));
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
        Launch(std::move(parts[i]), std::move(key), write, mode, std::move(part_done), nullptr,
               recut);
      }
      return;
    }
  }
  Launch(std::move(cmd), std::move(route_key), write, mode, std::move(done), nullptr, recut);
}

// SCAN, DBSIZE and FLUSHALL, region by region in key order: each step goes to the region
// holding `route`, and the next starts where the range that answered ends (Call::served), so a
// split or merge in between neither skips nor repeats keys. A SCAN with a limit is one step:
// when its region runs out first, its cursor (next) becomes the next region's start and the
// client goes on from there. KEYS (a SCAN without limit), DBSIZE and FLUSHALL walk to the end,
// adding up (FLUSHALL clears each region in its own write, as Redis Cluster's nodes do).
struct Router::Walk {
  kv::Command cmd;
  bool write = false;
  kv::ReadMode mode = kv::ReadMode::kLinearizable;
  std::string route;  // the engine key the next step routes by
  kv::CommandResult acc;
  int64_t count = 0, expires = 0;
  uint64_t bytes = 0;  // gathered so far (RouterOptions::max_result_bytes)
  Callback done;
};

void Router::RegionWalk(kv::Command cmd, bool write, kv::ReadMode mode, Callback done) {
  auto w = std::make_shared<Walk>();
  w->route =
      cmd.has_scan() ? kv::EncodeRawKey(cmd.scan().start()) : std::string(1, kv::kRawKeyPrefix);
  w->cmd = std::move(cmd);
  w->write = write;
  w->mode = mode;
  w->done = std::move(done);
  if (w->cmd.has_scan()) {
    w->acc = kv::ArrayResult();
    *w->acc.mutable_array()->add_items() = kv::NilResult();
    w->acc.mutable_array()->add_items()->mutable_array();
  }
  WalkStep(std::move(w));
}

void Router::WalkStep(const std::shared_ptr<Walk>& w) {
  kv::Command step = w->cmd;
  if (step.has_scan()) step.mutable_scan()->set_start(std::string(kv::DecodeRawKey(w->route)));
  auto on_step = [this, w](Result<kv::CommandResult> r, const store::RegionDescriptor& served) {
    if (!r.ok() || r->kind_case() == kv::CommandResult::kError) return w->done(std::move(r));
    // Where the range that answered ends; past the raw keyspace: the walk is over.
    const std::string end = store::EngineRangeEnd(served.end_key());
    bool last = end >= std::string(1, kv::kRawKeyPrefix + 1);
    const kv::Command& c = w->cmd;
    // A scan with an end of its own is over once a region reaches it.
    if (c.has_scan() && !c.scan().end().empty() && kv::EncodeRawKey(c.scan().end()) <= end) {
      last = true;
    }
    if (c.has_scan()) {
      if (!r->has_array() || r->array().items_size() != 2) return w->done(std::move(r));
      auto* items = w->acc.mutable_array()->mutable_items(1)->mutable_array();
      for (const auto& item : r->array().items(1).array().items()) {
        w->bytes += item.bulk().size();
        *items->add_items() = item;
      }
      if (w->bytes > options_.max_result_bytes) {
        return w->done(kv::ErrorResult(
            kv::KvError::RESULT_TOO_LARGE,
            fmt::format("the reply would hold more than {} bytes (--max-result-bytes); "
                        "use SCAN with a cursor instead",
                        options_.max_result_bytes)));
      }
      const kv::CommandResult& next = r->array().items(0);
      if (next.has_bulk() || last || c.scan().limit() != 0) {
        // Stopped at its limit (or the keyspace ended); a region that ran out hands the
        // client the next region's start as the cursor.
        *w->acc.mutable_array()->mutable_items(0) =
            next.has_bulk() || last ? next : kv::BulkResult(std::string(kv::DecodeRawKey(end)));
        return w->done(std::move(w->acc));
      }
    } else if (c.has_dbsize()) {
      if (r->has_array() && r->array().items_size() == 2) {
        w->count += r->array().items(0).integer();
        w->expires += r->array().items(1).integer();
      } else {
        w->count += r->integer();
      }
      if (last) {
        if (!c.dbsize().count_expires()) return w->done(kv::IntResult(w->count));
        kv::CommandResult both = kv::ArrayResult();
        *both.mutable_array()->add_items() = kv::IntResult(w->count);
        *both.mutable_array()->add_items() = kv::IntResult(w->expires);
        return w->done(std::move(both));
      }
    } else if (last) {
      return w->done(std::move(r));  // FLUSHALL: OK once every region is cleared
    }
    counters_.split_requests++;
    w->route = end;
    // On the executor, not from inside this answer: a walk over many regions would otherwise
    // nest one call per region.
    executor_->After(0, [this, w] { WalkStep(w); });
  };
  Launch(std::move(step), w->route, w->write, w->mode, nullptr, std::move(on_step));
}

void Router::RunPipeline(const std::shared_ptr<PipelineRun>& run) {
  const size_t n = run->commands.size();
  if (run->next >= n) {
    kv::CommandResult all;
    all.mutable_array();
    for (kv::CommandResult& r : run->results) *all.mutable_array()->add_items() = std::move(r);
    return run->done(std::move(all));
  }
  // The phase: commands from `next` on while each stays in one known region.
  std::map<uint64_t, std::vector<size_t>> parts;
  std::map<uint64_t, std::string> route_keys;
  size_t end = run->next;
  for (; end < n; ++end) {
    std::vector<std::string> keys;
    kv::UserKeys(run->commands[end], &keys);
    std::string route_key =
        keys.empty() ? std::string(1, kv::kRawKeyPrefix) : kv::EncodeRawKey(keys.front());
    std::optional<uint64_t> region;
    // DBSIZE, KEYS, FLUSHALL walk every region: alone.
    bool one = !Keyless(run->commands[end]);
    for (size_t i = 0; i < std::max<size_t>(keys.size(), 1) && one; ++i) {
      auto route = Route(keys.empty() ? route_key : kv::EncodeRawKey(keys[i]));
      if (!route || (region && *region != route->desc.id())) {
        one = false;
      } else {
        region = route->desc.id();
      }
    }
    if (one) {
      parts[*region].push_back(end);
      route_keys.emplace(*region, std::move(route_key));
      continue;
    }
    if (end > run->next) break;  // the phase before it goes first
    // Alone: Execute cuts a read by region, runs a write as a cross-region write, or finds an
    // unknown region.
    kv::Command alone = std::move(run->commands[end]);
    alone.set_now_ms(run->now_ms);
    return Execute(std::move(alone), run->mode, [this, run, end](Result<kv::CommandResult> r) {
      run->results[end] = r.ok() ? std::move(r).value() : StatusResult(r.status());
      run->next = end + 1;
      RunPipeline(run);
    });
  }
  run->remaining = parts.size();
  const size_t phase_end = end;
  // Built first: an answer may come back (and the next phase start) before the loop ends.
  std::vector<std::tuple<kv::Command, std::string, bool, std::vector<size_t>>> sends;
  for (auto& [region, positions] : parts) {
    kv::Command part;
    part.set_now_ms(run->now_ms);
    part.mutable_txn()->set_pipeline(true);
    for (size_t i : positions) *part.mutable_txn()->add_commands() = std::move(run->commands[i]);
    const bool write = kv::IsWriteCommand(part);
    sends.emplace_back(std::move(part), std::move(route_keys[region]), write, std::move(positions));
  }
  for (auto& [part, route_key, write, positions] : sends) {
    auto part_done = [this, run, phase_end,
                      positions = std::move(positions)](Result<kv::CommandResult> r) {
      bool last = false;
      {
        std::lock_guard<std::mutex> l(run->mu);
        const bool complete = r.ok() && r->has_array() &&
                              r->array().items_size() == static_cast<int>(positions.size());
        for (size_t j = 0; j < positions.size(); ++j) {
          if (complete) {
            run->results[positions[j]] = r->array().items(static_cast<int>(j));
          } else if (!r.ok()) {
            run->results[positions[j]] = StatusResult(r.status());
          } else if (r->kind_case() == kv::CommandResult::kError) {
            run->results[positions[j]] = *r;
          } else {
            run->results[positions[j]] =
                kv::ErrorResult(kv::KvError::INTERNAL, "pipeline result is malformed");
          }
        }
        last = --run->remaining == 0;
      }
      if (!last) return;
      run->next = phase_end;
      RunPipeline(run);
    };
    Launch(std::move(part), std::move(route_key), write, run->mode, std::move(part_done));
  }
}

void Router::Launch(kv::Command cmd, std::string route_key, bool write, kv::ReadMode mode,
                    Callback done, RegionCallback with_region, int recut) {
  auto call = std::make_shared<Call>();
  call->recut = recut;
  call->write = write;
  call->mode = mode;
  call->route_key = std::move(route_key);
  if (with_region) {
    call->served = std::make_shared<store::RegionDescriptor>();
    call->done = [served = call->served, with_region = std::move(with_region)](
                     Result<kv::CommandResult> r) { with_region(std::move(r), *served); };
  } else {
    call->done = std::move(done);
  }
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

void Router::Send(region::RegionRequest req, std::string route_key, std::vector<std::string> keys,
                  bool write, RegionReply reply, int64_t timeout_ms) {
  auto call = std::make_shared<Call>();
  call->write = write;
  call->route_key = std::move(route_key);
  call->keys = std::move(keys);
  call->reply = std::move(reply);
  call->req = std::move(req);
  call->deadline_ms = NowMs() + (timeout_ms > 0 ? timeout_ms : options_.request_timeout_ms);
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
  for (const std::string& key : call->keys) {
    if (key < route->desc.start_key() ||
        (!route->desc.end_key().empty() && key >= route->desc.end_key())) {
      // An earlier attempt may have been applied: cut again, it would run under another
      // request id, twice.
      if (call->write && call->maybe_applied) {
        return call->Fail(Status::TimedOut(
            "the request's keys span regions now, and an earlier attempt may have been applied"));
      }
      // Sent's keys are no longer in one region (a split): the sender cuts the request again.
      return call->Fail(Status::Aborted(kKeysSpanRegions));
    }
  }
  region::RequestHeader* h = call->req.mutable_header();
  if (call->served) *call->served = route->desc;
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
    // Transactional reads are never served stale, nor by a follower (txn/concurrency.h).
    const bool txn = call->req.has_txn();
    if (!txn && (call->mode == kv::ReadMode::kLocalStale || options_.unsafe_local_reads)) {
      return on_local(store_->ReadLocal(call->req));
    }
    // The fast path: this node leads the region and holds its lease.
    if (auto r = store_->ReadUnderLease(call->req)) return OnResponse(call, std::move(*r));
    // With leases the leader answers a read alone: sending it there costs one round trip,
    // where a ReadIndex from here costs that plus the leader's heartbeat round.
    if ((store_->lease_reads() || txn) && leader_elsewhere) return Forward(std::move(call), leader);
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
  if (!resp.has_error()) {
    if (call->reply) return call->reply(std::move(resp));
    const kv::CommandResult& r = resp.kv();
    if (r.has_error() && r.error().code() == kv::KvError::LOCKED && r.error().has_lock()) {
      return OnLocked(std::move(call), r.error().lock());
    }
    return call->done(std::move(*resp.mutable_kv()));
  }
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
      if (MaybeCutAgain(call)) return;
      if (call->immediate < kMaxImmediate) {
        call->immediate++;
        return Attempt(std::move(call));
      }
      return RetryLater(std::move(call), e.message());
    case region::RegionError::kKeyNotInRegion:
    case region::RegionError::kRegionNotFound:
      cache_.Invalidate(region);
      if (e.has_key_not_in_region() && MaybeCutAgain(call)) return;
      return RetryLater(std::move(call), e.message());
    case region::RegionError::kServerBusy:
      return RetryLater(std::move(call), e.message(),
                        static_cast<int64_t>(e.server_busy().backoff_ms()));
    case region::RegionError::kStaleCommand:
      return RetryLater(std::move(call), e.message());
    case region::RegionError::kTimeout:
      return call->Fail(Status::TimedOut(e.message()));
    case region::RegionError::kNoSpace:
      // The leader's disk alarm is up: this attempt was not applied, and retrying at once
      // cannot help -- but an earlier attempt of a write may have been.
      if (call->write && call->maybe_applied) break;
      return call->Fail(Status::ResourceExhausted(e.message()));
    case region::RegionError::KIND_NOT_SET:
      break;
  }
  if (call->write && call->maybe_applied) {
    return call->Fail(Status::TimedOut(fmt::format(
        "an earlier attempt may have been applied; this one was refused ({})", e.message())));
  }
  call->Fail(Status::InvalidArgument(e.message()));
}

void Router::OnLocked(std::shared_ptr<Call> call, const kv::LockInfo& lock) {
  // Each look is a raft write at the primary: a few per lock, the first soon (the writer
  // usually commits within milliseconds).
  const int64_t wait_ms =
      std::clamp<int64_t>(std::min<int64_t>(int64_t{2} << std::min(call->attempts, 5),
                                            lock.expire_at_ms() - clock_->NowWallMillis()),
                          1, 64);
  ResolveLock(lock, [this, call = std::move(call), wait_ms](bool progressed) mutable {
    if (call->write) {
      // The refused attempt wrote nothing (it was answered, so applied, as LOCKED): the
      // retry is a new request.
      call->req.mutable_header()->set_request_id(options_.request_id_base +
                                                 next_request_.fetch_add(1));
      call->maybe_applied = false;
    }
    if (progressed) {
      executor_->After(0, [this, call = std::move(call)]() mutable { Attempt(std::move(call)); });
      return;
    }
    RetryLater(std::move(call), "a key is locked by a cross-region write under way", wait_ms);
  });
}

bool Router::MaybeCutAgain(const std::shared_ptr<Call>& call) {
  // A command of several keys, or a txn, routed by its first key: after a split its keys may
  // be in several regions now, and sending it again as it is would be refused until its
  // deadline. Cut it again (a read is split, a write refused with CROSS_REGION) -- unless an
  // earlier attempt of a write may have been applied: a new request id could apply it twice.
  if (!call->req.has_kv() || call->recut >= 3 || call->done == nullptr ||
      (call->write && call->maybe_applied)) {
    return false;
  }
  std::vector<std::string> keys;
  kv::UserKeys(call->req.kv(), &keys);
  if (keys.size() < 2 && !call->req.kv().has_txn()) return false;
  counters_.retries++;
  ExecuteCut(call->req.kv(), call->mode, std::move(call->done), call->recut + 1);
  return true;
}

void Router::RetryLater(std::shared_ptr<Call> call, std::string_view why, int64_t delay_ms) {
  if (NowMs() >= call->deadline_ms) {
    if (call->maybe_applied) {
      return call->Fail(Status::TimedOut(
          fmt::format("no answer in time; the write may or may not have been applied ({})", why)));
    }
    return call->Fail(
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
            return call->Fail(Status::TimedOut("forwarded write timed out; outcome unknown"));
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
  if (req.body_case() == region::RegionRequest::kTxn) {
    if (!store::IsTxnRead(req.txn())) return store_->Propose(std::move(req), std::move(answer));
  } else if (req.body_case() != region::RegionRequest::kKv) {
    return answer(store::InvalidRequestResponse("only kv and txn requests are forwarded"));
  } else if (kv::IsWriteCommand(req.kv())) {
    return store_->Propose(std::move(req), std::move(answer));
  }
  const bool stale =
      request.read_mode() == static_cast<uint32_t>(kv::ReadMode::kLocalStale) && !req.has_txn();
  // Reads run on the executor, not on the transport's I/O thread, which a long one (SCAN,
  // DBSIZE) would hold up for every region's raft traffic.
  executor_->After(0, [this, stale, req = std::move(req), answer = std::move(answer)]() mutable {
    if (stale) return answer(store_->ReadLocal(req));
    if (auto r = store_->ReadUnderLease(req)) return answer(std::move(*r));
    store_->ReadLinearizable(std::move(req), std::move(answer));
  });
}

}  // namespace micedb::router
