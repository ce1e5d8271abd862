#include "coordinator/client.h"

#include <algorithm>

#include <fmt/format.h>

namespace micedb::coordinator {

struct CoordinatorClient::CallState {
  CoordRequest req;
  Done done;
  int64_t deadline_ms = 0;
  int attempts = 0;
  std::string last_error;
};

CoordinatorClient::CoordinatorClient(CoordinatorClientOptions options, CoordSender* sender,
                                     Executor* executor)
    : options_(options),
      sender_(sender),
      executor_(executor),
      clock_(options.clock ? options.clock : SystemClock::Get()) {}

int64_t CoordinatorClient::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->NowMonotonic()).count();
}

void CoordinatorClient::SetMembers(std::vector<store::NodeAddress> members) {
  std::lock_guard lock(mu_);
  members_ = std::move(members);
  const bool still = std::any_of(members_.begin(), members_.end(),
                                 [&](const auto& m) { return NodeId(m.node_id()) == leader_; });
  if (!still) leader_ = NodeId();
}

std::vector<store::NodeAddress> CoordinatorClient::members() const {
  std::lock_guard lock(mu_);
  return members_;
}

NodeId CoordinatorClient::leader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

void CoordinatorClient::Call(CoordRequest req, Done done) {
  Call(std::move(req), options_.timeout_ms, std::move(done));
}

void CoordinatorClient::Call(CoordRequest req, int64_t timeout_ms, Done done) {
  counters_.calls.fetch_add(1, std::memory_order_relaxed);
  auto call = std::make_shared<CallState>();
  call->req = std::move(req);
  call->done = std::move(done);
  call->deadline_ms = NowMs() + timeout_ms;
  Attempt(call);
}

void CoordinatorClient::Attempt(const std::shared_ptr<CallState>& call) {
  const int64_t left = call->deadline_ms - NowMs();
  if (left <= 0) {
    return call->done(
        Status::Unavailable(fmt::format("no coordinator answered in time{}{}",
                                        call->last_error.empty() ? "" : ": ", call->last_error)));
  }
  NodeId target;
  {
    std::lock_guard lock(mu_);
    if (members_.empty() && !leader_.valid()) {
      return call->done(Status::Unavailable("no coordinator is known to this node"));
    }
    if (leader_.valid()) {
      target = leader_;
    } else {
      target = NodeId(members_[next_member_++ % members_.size()].node_id());
    }
  }
  ++call->attempts;
  sender_->Send(
      target, call->req, std::min(left, options_.attempt_timeout_ms),
      [this, call, target](Result<CoordResponse> r) { OnAnswer(call, target, std::move(r)); });
}

void CoordinatorClient::OnAnswer(const std::shared_ptr<CallState>& call, NodeId target,
                                 Result<CoordResponse> r) {
  if (!r.ok()) {
    call->last_error = fmt::format("node {}: {}", target.value(), r.status().message());
    size_t members;
    {
      std::lock_guard lock(mu_);
      if (leader_ == target) leader_ = NodeId();
      members = members_.size();
    }
    // Try the next member at once; back off once every member has been tried.
    if (members > 0 && call->attempts % static_cast<int>(members) != 0) return Attempt(call);
    return Backoff(call);
  }
  if (r->has_error()) {
    const CoordError& e = r->error();
    call->last_error = fmt::format("node {}: {}", target.value(), e.message());
    if (e.not_leader()) {
      bool known = false;
      {
        std::lock_guard lock(mu_);
        leader_ = NodeId(e.leader());
        known = leader_.valid() && leader_ != target;
      }
      if (known) return Attempt(call);
      return Backoff(call);
    }
    if (!e.retry()) return call->done(std::move(*r));  // a final answer, error and all
    {
      std::lock_guard lock(mu_);
      // Keep asking the same node while it warms up.
      if (!leader_.valid()) leader_ = target;
    }
    return Backoff(call);
  }
  {
    std::lock_guard lock(mu_);
    leader_ = target;
  }
  call->done(std::move(*r));
}

void CoordinatorClient::Backoff(const std::shared_ptr<CallState>& call) {
  counters_.retries.fetch_add(1, std::memory_order_relaxed);
  executor_->After(options_.backoff_ms, [this, call] { Attempt(call); });
}

void CoordinatorClient::GetTimestamp(std::function<void(Result<uint64_t>)> done) {
  GetTimestamps(1, std::move(done));
}

void CoordinatorClient::GetTimestamps(uint32_t count, std::function<void(Result<uint64_t>)> done) {
  if (count == 0) return done(Status::InvalidArgument("no timestamps asked for"));
  std::vector<TsoWaiter> batch;
  {
    std::lock_guard lock(mu_);
    tso_waiting_.push_back(TsoWaiter{count, std::move(done)});
    if (tso_in_flight_) return;
    tso_in_flight_ = true;
    batch.swap(tso_waiting_);
  }
  SendTso(std::move(batch));
}

namespace {
// SendTso calls made from inside SendTso on this thread (an answer that came back at once).
thread_local int tso_depth = 0;
}  // namespace

void CoordinatorClient::SendTso(std::vector<TsoWaiter> batch) {
  if (tso_depth > 0) {
    // Answered on this thread (a local coordinator): go on from the executor instead of
    // recursing, however many rounds a busy client makes.
    auto moved = std::make_shared<decltype(batch)>(std::move(batch));
    executor_->After(0, [this, moved] { SendTso(std::move(*moved)); });
    return;
  }
  ++tso_depth;
  struct Leave {
    ~Leave() { --tso_depth; }
  } leave;
  counters_.tso_requests.fetch_add(1, std::memory_order_relaxed);
  CoordRequest req;
  uint64_t total = 0;
  for (const TsoWaiter& w : batch) total += w.count;
  req.mutable_tso()->set_count(static_cast<uint32_t>(total));
  auto shared = std::make_shared<decltype(batch)>(std::move(batch));
  Call(std::move(req), [this, shared, total](Result<CoordResponse> r) {
    auto& callers = *shared;
    if (r.ok() && r->has_tso() && r->tso().count() == total) {
      uint64_t next = r->tso().last() - r->tso().count() + 1;
      counters_.tso_timestamps.fetch_add(total, std::memory_order_relaxed);
      for (TsoWaiter& w : callers) {
        w.done(next);
        next += w.count;
      }
    } else {
      counters_.tso_failures.fetch_add(1, std::memory_order_relaxed);
      const Status why =
          !r.ok() ? r.status()
                  : Status::Unavailable(r->has_error() ? r->error().message() : "a bad TSO answer");
      for (auto& c : callers) c.done(why);
    }
    // The callers that came meanwhile go out together.
    std::vector<TsoWaiter> next;
    {
      std::lock_guard lock(mu_);
      if (tso_waiting_.empty()) {
        tso_in_flight_ = false;
        return;
      }
      next.swap(tso_waiting_);
    }
    SendTso(std::move(next));
  });
}

}  // namespace micedb::coordinator
