// The coordinator's operators and checkers (docs/sharding.md §3), the requests that make
// operators or change a store's state by hand, and store health. A scheduled operator is a
// sequence of membership steps for one region, each run by the region's leader as an admin
// request guarded by the epoch it reported, each known done from the region's next report.
// Operators live in the serving leader's memory only; a new leader's checkers make again what
// is still needed, so every step is written to be safe to run twice.
#include <algorithm>

#include <fmt/format.h>

#include "common/logging.h"
#include "coordinator/coordinator.h"
#include "coordinator/meta_state_machine.h"
#include "coordinator/responses.h"
#include "coordinator/schedule_steps.h"
#include "store/keys.h"

namespace micedb::coordinator {
namespace {

spdlog::logger* Log() { return GetLogger("coordinator"); }

// A step not yet seen done is handed to the leader again after this long (the leader may have
// lost it: a leadership change, a refusal while another change was in flight).
constexpr int64_t kResendMs = 1000;
constexpr size_t kFinishedKept = 64;

bool StepDone(const OperatorStep& step, const RegionMeta& reported) {
  const auto& cs = reported.region().conf_state();
  switch (step.kind()) {
    case Operator::ADD_LEARNER:
      return Has(cs.learners(), step.store_id()) || Has(cs.voters(), step.store_id());
    case Operator::PROMOTE:
      return Has(cs.voters(), step.store_id());
    case Operator::REMOVE_PEER:
      return !Has(cs.learners(), step.store_id()) && !Has(cs.voters(), step.store_id());
    case Operator::TRANSFER_LEADER:
      return reported.leader() == step.store_id();
    default:
      return true;
  }
}

std::string StepText(const OperatorStep& s) {
  switch (s.kind()) {
    case Operator::ADD_LEARNER:
      return fmt::format("add a learner on store {}", s.store_id());
    case Operator::PROMOTE:
      return fmt::format("promote store {}", s.store_id());
    case Operator::REMOVE_PEER:
      return fmt::format("remove store {}", s.store_id());
    case Operator::TRANSFER_LEADER:
      return fmt::format("move the leadership to store {}", s.store_id());
    default:
      return "?";
  }
}

}  // namespace

const char* Coordinator::HealthName(Health h) {
  switch (h) {
    case Health::kUp:
      return "up";
    case Health::kDisconnected:
      return "disconnected";
    case Health::kDown:
      return "down";
    case Health::kOffline:
      return "offline";
    case Health::kTombstone:
      return "tombstone";
    case Health::kUnknown:
      break;
  }
  return "unknown";
}

int64_t Coordinator::SilentMs(uint64_t store, int64_t now) const {
  auto live = store_live_.find(store);
  // A new leader has heard from no one yet: count from when it took over.
  return now - (live != store_live_.end() ? live->second.last_ms : led_since_ms_);
}

Coordinator::Health Coordinator::StoreHealth(uint64_t store, int64_t now) const {
  auto it = stores_.find(store);
  if (it == stores_.end()) return Health::kUnknown;
  if (it->second.state() == STORE_TOMBSTONE) return Health::kTombstone;
  if (it->second.state() == STORE_OFFLINE) return Health::kOffline;
  const int64_t silent = SilentMs(store, now);
  if (silent >= options_.store_down_ms) return Health::kDown;
  if (silent >= options_.store_disconnected_ms) return Health::kDisconnected;
  return Health::kUp;
}

void Coordinator::HandleAddOperator(const AddOperatorRequest& req, const Done& done) {
  CoordResponse resp;
  bool serving = false;
  {
    std::lock_guard lock(mu_);
    serving = ready_;
    if (serving) {
      const Operator& op = req.op();
      if (regions_.find(op.region_id()) == regions_.end() &&
          !(store::IsMetaRegion(op.region_id()) && meta_->Report())) {
        resp = Error(fmt::format("region {} is not known to the coordinator", op.region_id()));
      } else if (op.store_id() == 0) {
        resp = Error("an operator needs a store");
      } else if (auto running = operators_.find(op.region_id()); running != operators_.end()) {
        resp = Error(fmt::format("region {} has operator {} ({}) under way", op.region_id(),
                                 running->second.view.id(), running->second.view.name()));
      } else {
        OperatorStep step;
        step.set_kind(op.kind());
        step.set_store_id(op.store_id());
        StartOperator(op.region_id(), "manual", "asked for by hand", {step});
        RunningOp& started = operators_[op.region_id()];
        started.peer_addr = op.peer_addr();
        resp.mutable_add_operator()->set_id(started.view.id());
      }
    }
  }
  done(serving ? std::move(resp) : Refusal());
}

void Coordinator::HandleSetStoreState(const SetStoreStateRequest& req, const Done& done) {
  std::optional<CoordResponse> refused;
  StoreMeta s;
  {
    std::lock_guard lock(mu_);
    if (!ready_) return done(Refusal());
    auto it = stores_.find(req.store_id());
    if (it == stores_.end()) {
      refused = Error(fmt::format("store {} is not known to the coordinator", req.store_id()));
    } else if (it->second.state() == STORE_TOMBSTONE) {
      refused = Error(fmt::format("store {} is a tombstone already", req.store_id()));
    } else if (req.state() == STORE_TOMBSTONE) {
      refused = Error("a store becomes a tombstone once decommissioned: mark it offline");
    } else if (req.state() == STORE_OFFLINE && it->second.state() != STORE_OFFLINE) {
      // Its replicas need somewhere to go: as many other stores as a region has replicas.
      const int64_t now = NowMs();
      uint32_t others = 0;
      for (const auto& [id, meta] : stores_) {
        if (id != req.store_id() && StoreHealth(id, now) == Health::kUp) ++others;
      }
      const uint32_t need = std::max<uint32_t>(1, state_.cluster().max_replicas());
      if (others < need) {
        refused = Error(fmt::format(
            "store {} cannot be decommissioned: {} other stores are up and regions keep {} "
            "replicas; add a store first",
            req.store_id(), others, need));
      }
    }
    if (!refused) {
      s = it->second;
      s.set_state(req.state());
    }
  }
  if (refused) return done(std::move(*refused));
  Log()->info("coordinator: store {} marked {}", s.id(), StoreState_Name(s.state()));
  PutStore(s, [done, s](const std::string& err) {
    if (!err.empty()) return done(RetryLater("saving the store failed: " + err));
    CoordResponse r;
    *r.mutable_set_store_state()->mutable_store() = s;
    done(std::move(r));
  });
}

bool Coordinator::StartOperator(uint64_t region, std::string name, std::string reason,
                                std::vector<OperatorStep> steps) {
  if (operators_.count(region) || steps.empty()) return false;
  const int64_t now = NowMs();
  RunningOp op;
  op.view.set_id(next_operator_++);
  op.view.set_region_id(region);
  op.view.set_name(std::move(name));
  op.view.set_reason(std::move(reason));
  bool only_leader = true;
  for (auto& s : steps) {
    only_leader &= s.kind() == Operator::TRANSFER_LEADER;
    *op.view.add_steps() = std::move(s);
  }
  op.view.set_created_ms(now);
  op.view.set_deadline_ms(
      now + (only_leader ? options_.leader_operator_timeout_ms : options_.operator_timeout_ms));
  op.view.set_state("running");
  op.view.set_note(StepText(op.view.steps(0)));
  op.step_ms = now;
  excess_since_.erase(region);
  Log()->info("coordinator: operator {} for region {}: {} ({})", op.view.id(), region,
              op.view.name(), op.view.reason());
  counters_.operators_created.fetch_add(1, std::memory_order_relaxed);
  operators_.emplace(region, std::move(op));
  return true;
}

void Coordinator::FinishOperator(uint64_t region, const std::string& state,
                                 const std::string& note) {
  auto it = operators_.find(region);
  if (it == operators_.end()) return;
  OperatorView v = std::move(it->second.view);
  operators_.erase(it);
  v.set_state(state);
  v.set_note(note);
  v.set_finished_ms(NowMs());
  auto& counter = state == "done"      ? counters_.operators_done
                  : state == "timeout" ? counters_.operators_timed_out
                                       : counters_.operators_cancelled;
  counter.fetch_add(1, std::memory_order_relaxed);
  Log()->info("coordinator: operator {} for region {} {}: {}", v.id(), region, state, note);
  finished_.push_back(std::move(v));
  while (finished_.size() > kFinishedKept) finished_.pop_front();
}

void Coordinator::AdvanceOperator(const RegionHeartbeat& hb, std::vector<Operator>* out) {
  const RegionMeta& reported = hb.region();
  const uint64_t region = reported.region().id();
  auto it = operators_.find(region);
  if (it == operators_.end()) return;
  RunningOp& op = it->second;
  const int64_t now = NowMs();
  while (op.view.step() < static_cast<uint32_t>(op.view.steps_size()) &&
         StepDone(op.view.steps(static_cast<int>(op.view.step())), reported)) {
    op.view.set_step(op.view.step() + 1);
    op.step_ms = now;
    op.sent_ms = 0;
  }
  if (op.view.step() == static_cast<uint32_t>(op.view.steps_size())) {
    return FinishOperator(region, "done", "every step is done");
  }
  const OperatorStep& step = op.view.steps(static_cast<int>(op.view.step()));
  const auto& cs = reported.region().conf_state();
  const bool pending = Has(hb.pending_peers(), step.store_id());
  Operator run;
  run.set_id(op.view.id());
  run.set_region_id(region);
  *run.mutable_epoch() = reported.region().epoch();
  run.set_kind(step.kind());
  run.set_store_id(step.store_id());
  std::string note = StepText(step);
  switch (step.kind()) {
    case Operator::PROMOTE:
      // A learner is promoted once it has caught up: a voter far behind would hold commits.
      if (!Has(cs.learners(), step.store_id()) || pending) {
        op.view.set_note(note + ": waiting for the learner to catch up");
        return;
      }
      break;
    case Operator::TRANSFER_LEADER:
      if (!Has(cs.voters(), step.store_id()) || pending) {
        op.view.set_note(note + ": waiting for it to catch up");
        return;
      }
      break;
    case Operator::REMOVE_PEER:
      if (reported.leader() == step.store_id()) {
        // A leader does not remove itself: hand the leadership to a caught-up voter first.
        uint64_t to = 0;
        for (uint64_t v : cs.voters()) {
          if (v != step.store_id() && !Has(hb.pending_peers(), v) &&
              StoreHealth(v, now) == Health::kUp) {
            to = v;
            break;
          }
        }
        if (to == 0) {
          op.view.set_note(note + ": waiting for another voter to take the leadership");
          return;
        }
        run.set_kind(Operator::TRANSFER_LEADER);
        run.set_store_id(to);
        note = fmt::format("{} (its leadership moves to store {} first)", note, to);
      }
      break;
    default:
      break;
  }
  op.view.set_note(note);
  if (op.sent_ms != 0 && now - op.sent_ms < kResendMs && op.sent_kind == run.kind() &&
      op.sent_store == run.store_id()) {
    return;
  }
  op.sent_ms = now;
  op.sent_kind = run.kind();
  op.sent_store = run.store_id();
  if (auto s = stores_.find(run.store_id()); s != stores_.end()) {
    run.set_peer_addr(s->second.peer_addr());
  } else {
    run.set_peer_addr(op.peer_addr);
  }
  out->push_back(std::move(run));
}

std::string Coordinator::HostOf(uint64_t store) const {
  auto it = stores_.find(store);
  if (it == stores_.end()) return {};
  auto h = it->second.labels().find("host");
  return h == it->second.labels().end() ? std::string() : h->second;
}

void Coordinator::StepsUnderWay(std::map<uint64_t, int64_t>* adding,
                                std::map<uint64_t, int64_t>* removing) const {
  for (const auto& [region, op] : operators_) {
    for (int i = static_cast<int>(op.view.step()); i < op.view.steps_size(); ++i) {
      const OperatorStep& s = op.view.steps(i);
      if (s.kind() == Operator::ADD_LEARNER) ++(*adding)[s.store_id()];
      if (s.kind() == Operator::REMOVE_PEER && removing) ++(*removing)[s.store_id()];
    }
  }
}

uint64_t Coordinator::PickTarget(const store::RegionDescriptor& desc,
                                 const std::vector<uint64_t>& keep) {
  const int64_t now = NowMs();
  std::set<std::string> hosts;
  for (uint64_t k : keep) {
    if (std::string h = HostOf(k); !h.empty()) hosts.insert(std::move(h));
  }
  std::map<uint64_t, int64_t> adding;
  StepsUnderWay(&adding, nullptr);
  uint64_t best = 0;
  std::tuple<bool, uint64_t, uint64_t> best_score{};
  for (const auto& [id, meta] : stores_) {
    if (StoreHealth(id, now) != Health::kUp) continue;
    if (Has(desc.conf_state().voters(), id) || Has(desc.conf_state().learners(), id)) continue;
    if (auto live = store_live_.find(id);
        live == store_live_.end() || live->second.stats.no_space()) {
      continue;
    }
    const uint64_t busy = adding.count(id) ? static_cast<uint64_t>(adding[id]) : 0;
    if (busy >= options_.store_limit) continue;
    const std::string host = HostOf(id);
    const bool shared_host = !host.empty() && hosts.count(host) > 0;
    const uint64_t load = (replica_counts_.count(id) ? replica_counts_[id] : 0) + busy;
    std::tuple<bool, uint64_t, uint64_t> score{shared_host, load, id};
    if (best == 0 || score < best_score) {
      best = id;
      best_score = score;
    }
  }
  return best;
}

void Coordinator::CheckReplicas(const RegionHeartbeat& hb, int64_t now) {
  const store::RegionDescriptor& desc = hb.region().region();
  const uint64_t region = desc.id();
  const auto& cs = desc.conf_state();
  const uint32_t want = std::max<uint32_t>(
      1, state_.cluster().max_replicas() ? state_.cluster().max_replicas() : options_.max_replicas);
  const uint64_t leader = hb.region().leader();
  std::vector<uint64_t> voters(cs.voters().begin(), cs.voters().end());
  std::vector<uint64_t> learners(cs.learners().begin(), cs.learners().end());
  auto health = [&](uint64_t s) { return StoreHealth(s, now); };
  auto bad = [&](uint64_t s) {
    const Health h = health(s);
    return h == Health::kDown || h == Health::kOffline || h == Health::kTombstone;
  };
  // A store the coordinator does not know (never registered): do nothing with the region.
  for (uint64_t s : voters) {
    if (health(s) == Health::kUnknown) return;
  }
  auto why = [&](uint64_t s) {
    return health(s) == Health::kOffline ? fmt::format("store {} is being decommissioned", s)
                                         : fmt::format("store {} is {}", s, HealthName(health(s)));
  };
  // Someone else (an operator by hand, a leader mid-change) may be behind an excess replica on
  // a healthy store: remove it only after it has stayed a while.
  auto excess_ripe = [&]() {
    auto [it, fresh] = excess_since_.emplace(region, now);
    (void)fresh;
    return now - it->second >= options_.excess_grace_ms;
  };
  if (learners.empty() && voters.size() <= want) excess_since_.erase(region);
  std::vector<uint64_t> good_voters;
  std::vector<uint64_t> bad_voters;
  for (uint64_t v : voters) (bad(v) ? bad_voters : good_voters).push_back(v);

  // 1. A learner no operator is behind (one at a time).
  if (!learners.empty()) {
    const uint64_t l = learners.front();
    if (bad(l)) {
      StartOperator(region, "remove-learner", why(l), {Step(Operator::REMOVE_PEER, l)});
      return;
    }
    if (good_voters.size() < want && !Has(hb.pending_peers(), l)) {
      StartOperator(region, "promote-learner",
                    fmt::format("the region has {} healthy voters of {}", good_voters.size(), want),
                    {Step(Operator::PROMOTE, l)});
      return;
    }
    if (voters.size() >= want && excess_ripe()) {
      StartOperator(region, "remove-learner", "a learner no operator added",
                    {Step(Operator::REMOVE_PEER, l)});
    }
    return;  // or catching up, and needed: a later pass promotes it
  }
  // 2. Voters on stores that are down, offline or gone: replace them (add a learner elsewhere,
  // let it catch up, promote it, then remove the old one), one at a time.
  if (!bad_voters.empty()) {
    if (good_voters.size() * 2 <= voters.size()) return;  // no quorum: nothing can commit
    const uint64_t old = bad_voters.front();
    if (voters.size() > want) {
      StartOperator(region, "remove-replica", why(old), {Step(Operator::REMOVE_PEER, old)});
      return;
    }
    const uint64_t target = PickTarget(desc, good_voters);
    if (target == 0) return;  // nowhere to go now (counted in the status as waiting)
    StartOperator(region, "replace-replica", why(old),
                  {Step(Operator::ADD_LEARNER, target), Step(Operator::PROMOTE, target),
                   Step(Operator::REMOVE_PEER, old)});
    return;
  }
  // 3. Too few voters.
  if (voters.size() < want) {
    const uint64_t target = PickTarget(desc, voters);
    if (target == 0) return;
    StartOperator(region, "add-replica",
                  fmt::format("the region has {} voters of {}", voters.size(), want),
                  {Step(Operator::ADD_LEARNER, target), Step(Operator::PROMOTE, target)});
    return;
  }
  // 4. Too many: drop one on a silent store first, else on the busiest store (not the leader's
  // if there is a choice), after the grace period.
  if (voters.size() > want) {
    if (!excess_ripe()) return;
    uint64_t victim = 0;
    std::tuple<bool, bool, uint32_t> worst{};
    for (uint64_t v : voters) {
      const std::tuple<bool, bool, uint32_t> score{health(v) == Health::kDisconnected, v != leader,
                                                   replica_counts_[v]};
      if (victim == 0 || score > worst) {
        victim = v;
        worst = score;
      }
    }
    StartOperator(region, "remove-replica",
                  fmt::format("the region has {} voters of {}", voters.size(), want),
                  {Step(Operator::REMOVE_PEER, victim)});
    return;
  }
  // 5. Two voters on one host while another host could take one.
  std::map<std::string, std::vector<uint64_t>> by_host;
  for (uint64_t v : voters) {
    if (std::string h = HostOf(v); !h.empty()) by_host[h].push_back(v);
  }
  for (const auto& [host, on] : by_host) {
    if (on.size() < 2) continue;
    uint64_t move = on.front() == leader ? on.back() : on.front();
    std::vector<uint64_t> rest;
    for (uint64_t v : voters) {
      if (v != move) rest.push_back(v);
    }
    const uint64_t target = PickTarget(desc, rest);
    if (target == 0 || HostOf(target) == host || HostOf(target).empty()) return;
    StartOperator(region, "replace-replica",
                  fmt::format("stores {} and {} share host {}", on[0], on[1], host),
                  {Step(Operator::ADD_LEARNER, target), Step(Operator::PROMOTE, target),
                   Step(Operator::REMOVE_PEER, move)});
    return;
  }
}

size_t Coordinator::Running(const std::string& name) const {
  size_t n = 0;
  for (const auto& [region, op] : operators_) n += op.view.name() == name;
  return n;
}

void Coordinator::Schedule(Actions* after) {
  const int64_t now = NowMs();
  // Operators that ran out of time, or whose region or target is gone.
  std::vector<std::pair<uint64_t, std::pair<std::string, std::string>>> ended;
  for (const auto& [region, op] : operators_) {
    if (now > op.view.deadline_ms()) {
      ended.push_back({region, {"timeout", "timed out at: " + op.view.note()}});
      continue;
    }
    if (!store::IsMetaRegion(region) && !regions_.count(region)) {
      ended.push_back({region, {"cancelled", "the region is gone (merged or replaced)"}});
      continue;
    }
    for (int i = static_cast<int>(op.view.step()); i < op.view.steps_size(); ++i) {
      const OperatorStep& s = op.view.steps(i);
      if (s.kind() == Operator::REMOVE_PEER) continue;
      const Health h = StoreHealth(s.store_id(), now);
      if (h != Health::kUp && h != Health::kDisconnected) {
        ended.push_back(
            {region, {"cancelled", fmt::format("store {} is {}", s.store_id(), HealthName(h))}});
        break;
      }
    }
  }
  for (const auto& [region, how] : ended) FinishOperator(region, how.first, how.second);

  replica_counts_.clear();
  for (const auto& [id, reg] : regions_) {
    for (uint64_t v : reg.region().conf_state().voters()) ++replica_counts_[v];
    for (uint64_t l : reg.region().conf_state().learners()) ++replica_counts_[l];
  }
  // The meta region: this node leads it, so its picture is local.
  std::optional<RegionHeartbeat> meta = meta_->Report();
  if (meta) {
    std::vector<Operator> run;
    AdvanceOperator(*meta, &run);
    for (auto& op : run) {
      counters_.operators_sent.fetch_add(1, std::memory_order_relaxed);
      after->push_back([this, op = std::move(op)] { meta_->RunOperator(op); });
    }
    if (!operators_.count(meta->region().region().id()) &&
        operators_.size() < options_.max_operators) {
      CheckReplicas(*meta, now);
    }
  }
  for (const auto& [id, reg] : regions_) {
    if (operators_.size() >= options_.max_operators) break;
    if (operators_.count(id)) continue;
    auto live = region_live_.find(id);
    if (live == region_live_.end() || now - live->second.last_ms > kFreshReportMs) continue;
    CheckReplicas(live->second.last, now);
  }
  BalanceHotRegions(now);
  BalanceLeaders(now);
  BalanceRegions(now);
  // Decommissions that are complete: no replica left on the store, as the directory and the
  // store itself say (or it is down and the directory says so).
  for (const auto& [id, s] : stores_) {
    if (s.state() != STORE_OFFLINE || tombstoning_.count(id)) continue;
    if (replica_counts_.count(id)) continue;
    if (meta && (Has(meta->region().region().conf_state().voters(), id) ||
                 Has(meta->region().region().conf_state().learners(), id))) {
      continue;
    }
    auto live = store_live_.find(id);
    const bool empty = live != store_live_.end() && live->second.stats.region_count() == 0 &&
                       !live->second.stats.coordinator();
    if (!empty && SilentMs(id, now) < options_.store_down_ms) continue;
    tombstoning_.insert(id);
    StoreMeta t = s;
    t.set_state(STORE_TOMBSTONE);
    after->push_back([this, t] {
      PutStore(t, [this, id = t.id()](const std::string& err) {
        std::lock_guard lock(mu_);
        tombstoning_.erase(id);
        if (!err.empty()) {
          Log()->warn("coordinator: marking store {} a tombstone failed: {}", id, err);
          return;
        }
        counters_.stores_tombstoned.fetch_add(1, std::memory_order_relaxed);
        Log()->info("coordinator: store {} is decommissioned (tombstone)", id);
      });
    });
  }
}

}  // namespace micedb::coordinator
