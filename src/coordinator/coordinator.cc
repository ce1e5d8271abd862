#include "coordinator/coordinator.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include <fmt/format.h>

#include "common/logging.h"
#include "coordinator/meta_state_machine.h"
#include "coordinator/responses.h"
#include "store/keys.h"

namespace micedb::coordinator {
namespace {

constexpr uint64_t kMaxLogical = uint64_t{1} << Coordinator::kLogicalBits;
constexpr uint32_t kMaxTsoCount = 1 << 16;
// TSO calls that may wait for one leadership check (without a lease) before more are refused.
constexpr size_t kMaxTsoWaiters = 100'000;

spdlog::logger* Log() { return GetLogger("coordinator"); }

// Whether two store records describe the same node the same way (state and registration time
// aside, which the coordinator owns).
bool SameStore(const StoreMeta& a, const StoreMeta& b) {
  StoreMeta x = a, y = b;
  x.clear_state();
  y.clear_state();
  x.clear_registered_ms();
  y.clear_registered_ms();
  // Not by serialized bytes: a map's (labels') order there is unspecified.
  return google::protobuf::util::MessageDifferencer::Equals(x, y);
}

bool SameRegion(const RegionMeta& a, const RegionMeta& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

bool Overlap(const store::RegionDescriptor& a, const store::RegionDescriptor& b) {
  return (b.end_key().empty() || a.start_key() < b.end_key()) &&
         (a.end_key().empty() || b.start_key() < a.end_key());
}

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, MetaRegion* meta)
    : options_(options),
      meta_(meta),
      clock_(options_.clock ? options_.clock : SystemClock::Get()) {}

Coordinator::~Coordinator() { Stop(); }

int64_t Coordinator::NowMs() const { return clock_->NowWallMillis(); }

bool Coordinator::LeaseHeld() const {
  return meta_->LeaseUntilNs() > clock_->NowMonotonic().count();
}

void Coordinator::Stop() {
  std::vector<IdWaiter> waiters;
  std::vector<TsoWaiter> tso;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    ready_ = false;
    waiters.swap(id_waiters_);
    tso.swap(tso_confirming_);
    for (auto& w : tso_waiting_) tso.push_back(std::move(w));
    tso_waiting_.clear();
  }
  for (auto& w : waiters) w.done(Status::Unavailable("the coordinator is stopping"));
  for (auto& w : tso) w.done(RetryLater("the coordinator is stopping"));
}

bool Coordinator::Serving() const {
  std::lock_guard lock(mu_);
  return ready_ && LeaseHeld();
}

CoordResponse Coordinator::Refusal() const {
  counters_.not_leader.fetch_add(1, std::memory_order_relaxed);
  auto [leader, term] = meta_->LeaderAndTerm();
  (void)term;
  if (leader.valid() && leader != meta_->self()) {
    CoordResponse r = Error(fmt::format("node {} leads the coordinator", leader.value()));
    r.mutable_error()->set_not_leader(true);
    r.mutable_error()->set_leader(leader.value());
    return r;
  }
  return RetryLater(leader.valid() ? "the coordinator's new leader is getting ready"
                                   : "the coordinator has no leader now (election)");
}

void Coordinator::Tick() {
  Actions after;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    auto [leader, term] = meta_->LeaderAndTerm();
    const bool leading = leader.valid() && leader == meta_->self();
    if (!leading || term != term_) {
      if (term_ != 0) {
        Log()->info("coordinator: no longer leading (term {})", term_);
        for (auto& w : id_waiters_) {
          after.push_back([d = std::move(w.done)] {
            d(Status::Unavailable("the coordinator's leader changed"));
          });
        }
        id_waiters_.clear();
        for (auto* q : {&tso_confirming_, &tso_waiting_}) {
          for (auto& w : *q) after.push_back([this, d = std::move(w.done)] { d(Refusal()); });
          q->clear();
        }
        confirm_in_flight_ = false;
        store_live_.clear();
        region_live_.clear();
        operators_.clear();
        excess_since_.clear();
        tombstoning_.clear();
      }
      term_ = 0;
      ready_ = false;
      warming_ = false;
      saving_bound_ = false;
      gc_saving_ = false;
      last_gc_ms_ = 0;
      refilling_ = false;
      next_id_ = end_id_ = 0;
      if (leading) {
        term_ = term;
        led_since_ms_ = NowMs();
        Log()->info("coordinator: leading in term {}; warming up", term);
        StartWarmup(term, &after);
      }
    } else if (!ready_ && !warming_) {
      StartWarmup(term, &after);  // an earlier warm-up failed: try again
    } else if (ready_) {
      const int64_t now = NowMs();
      if (now > physical_ms_ && now < bound_ms_) {
        physical_ms_ = now;
        logical_ = 0;
      }
      MaybeSaveTsoBound(&after);
      MaybeAdvanceGc(now, &after);
      if (options_.schedule_interval_ms > 0 &&
          now - last_schedule_ms_ >= options_.schedule_interval_ms) {
        last_schedule_ms_ = now;
        Schedule(&after);
      }
    }
  }
  Run(after);
}

size_t Coordinator::RunningOperators() const {
  std::lock_guard lock(mu_);
  return ready_ ? operators_.size() : 0;
}

bool Coordinator::StillTerm(uint64_t term) {
  if (stopped_ || term_ != term) return false;
  return true;
}

void Coordinator::WarmupFailed(uint64_t term, const Status& why) {
  std::lock_guard lock(mu_);
  if (term_ == term) warming_ = false;  // the next Tick tries again
  Log()->info("coordinator: warm-up in term {} failed: {}", term, why.ToString());
}

void Coordinator::StartWarmup(uint64_t term, Actions* after) {
  warming_ = true;
  after->push_back([this, term] { WarmupLoad(term); });
}

void Coordinator::WarmupLoad(uint64_t term) {
  // One command through raft: once it is applied here, so is every entry of earlier terms.
  MetaCommand get;
  get.mutable_get_state();
  meta_->Propose(get, [this, term](Result<MetaResult> r) {
    if (!r.ok()) return WarmupFailed(term, r.status());
    if (r->state().bootstrapped()) {
      {
        std::lock_guard lock(mu_);
        if (!StillTerm(term)) return;
        state_ = r->state();
      }
      return WarmupRegions(term, "");
    }
    // The first leader of a new cluster bootstraps it.
    MetaCommand b;
    b.mutable_bootstrap()->mutable_cluster()->set_cluster_id(options_.cluster_id);
    b.mutable_bootstrap()->mutable_cluster()->set_bootstrapped_ms(NowMs());
    b.mutable_bootstrap()->mutable_cluster()->set_max_replicas(options_.max_replicas);
    b.mutable_bootstrap()->set_first_id(options_.first_id);
    meta_->Propose(b, [this, term](Result<MetaResult> r) {
      if (!r.ok()) return WarmupFailed(term, r.status());
      Log()->info("coordinator: cluster {:016x} bootstrapped", r->state().cluster().cluster_id());
      {
        std::lock_guard lock(mu_);
        if (!StillTerm(term)) return;
        state_ = r->state();
      }
      WarmupRegions(term, "");
    });
  });
}

void Coordinator::WarmupRegions(uint64_t term, std::string from) {
  if (from.empty()) {
    std::lock_guard lock(mu_);
    regions_.clear();
    stores_.clear();
  }
  MetaCommand scan;
  scan.mutable_scan_regions()->set_start_key(from);
  meta_->Read(scan, [this, term, from](Result<MetaResult> r) {
    if (!r.ok()) return WarmupFailed(term, r.status());
    std::string next;
    {
      std::lock_guard lock(mu_);
      if (!StillTerm(term)) return;
      for (const auto& reg : r->regions()) regions_[reg.region().id()] = reg;
      // A full page that does not reach the end: read on from its last region's end.
      if (r->regions_size() == static_cast<int>(kMaxScanRegions)) {
        next = r->regions(r->regions_size() - 1).region().end_key();
      }
    }
    if (!next.empty()) return WarmupRegions(term, next);
    MetaCommand stores;
    stores.mutable_get_stores();
    meta_->Read(stores, [this, term](Result<MetaResult> r) {
      if (!r.ok()) return WarmupFailed(term, r.status());
      {
        std::lock_guard lock(mu_);
        if (!StillTerm(term)) return;
        for (const auto& s : r->stores()) stores_[s.id()] = s;
      }
      WarmupTso(term);
    });
  });
}

void Coordinator::WarmupTso(uint64_t term) {
  int64_t physical;
  MetaCommand save;
  {
    std::lock_guard lock(mu_);
    if (!StillTerm(term)) return;
    // Above every timestamp any earlier leader handed out: they all lie below the bound that
    // was applied before this term's first command.
    physical = std::max(NowMs(), state_.tso_bound_ms() + 1);
    save.mutable_save_tso_bound()->set_bound_ms(physical + options_.tso_window_ms);
  }
  meta_->Propose(save, [this, term, physical](Result<MetaResult> r) {
    if (!r.ok()) return WarmupFailed(term, r.status());
    std::lock_guard lock(mu_);
    if (!StillTerm(term)) return;
    state_ = r->state();
    bound_ms_ = r->state().tso_bound_ms();
    physical_ms_ = physical;
    logical_ = 0;
    ready_ = true;
    warming_ = false;
    counters_.leader_terms.fetch_add(1, std::memory_order_relaxed);
    counters_.tso_bound_saves.fetch_add(1, std::memory_order_relaxed);
    Log()->info("coordinator: serving in term {} (cluster {:016x}, {} stores, {} regions)", term,
                state_.cluster().cluster_id(), stores_.size(), regions_.size());
  });
}

void Coordinator::MaybeSaveTsoBound(Actions* after) {
  const int64_t base = std::max(NowMs(), physical_ms_);
  // Renew when a third of the window is used, so that a slow raft round never stalls the
  // oracle.
  if (saving_bound_ || bound_ms_ - base > options_.tso_window_ms * 2 / 3) return;
  saving_bound_ = true;
  MetaCommand save;
  save.mutable_save_tso_bound()->set_bound_ms(base + options_.tso_window_ms);
  after->push_back([this, save, term = term_] {
    meta_->Propose(save, [this, term](Result<MetaResult> r) {
      std::lock_guard lock(mu_);
      if (!StillTerm(term)) return;
      saving_bound_ = false;
      if (!r.ok()) return;
      bound_ms_ = std::max(bound_ms_, r->state().tso_bound_ms());
      state_.set_tso_bound_ms(bound_ms_);
      counters_.tso_bound_saves.fetch_add(1, std::memory_order_relaxed);
    });
  });
}

void Coordinator::MaybeAdvanceGc(int64_t now, Actions* after) {
  if (options_.gc_life_time_ms <= 0 || options_.gc_interval_ms <= 0 || gc_saving_) return;
  if (last_gc_ms_ != 0 && now - last_gc_ms_ < options_.gc_interval_ms) return;
  // A new leader first hears from every store (their oldest running transactions).
  if (now - led_since_ms_ < options_.store_disconnected_ms) return;
  last_gc_ms_ = now;
  uint64_t sp = ComposeTs(physical_ms_ - options_.gc_life_time_ms, 0);
  for (const auto& [id, live] : store_live_) {
    // A store silent this long is not counted: should it come back with an older
    // transaction, that transaction's reads and prewrites are refused as too old.
    if (now - live.last_ms > options_.store_disconnected_ms) continue;
    const uint64_t oldest = live.stats.txn_oldest_start_ts();
    if (oldest != 0) sp = std::min(sp, oldest - 1);
  }
  if (physical_ms_ <= options_.gc_life_time_ms || sp <= state_.gc_safe_point()) return;
  gc_saving_ = true;
  MetaCommand cmd;
  cmd.mutable_set_gc_safe_point()->set_safe_point(sp);
  after->push_back([this, cmd, term = term_] {
    meta_->Propose(cmd, [this, term](Result<MetaResult> r) {
      std::lock_guard lock(mu_);
      if (!StillTerm(term)) return;
      gc_saving_ = false;
      if (!r.ok()) return;
      if (r->state().gc_safe_point() > state_.gc_safe_point()) {
        state_.set_gc_safe_point(r->state().gc_safe_point());
        Log()->info("coordinator: GC safe point {}", state_.gc_safe_point());
      }
    });
  });
}

void Coordinator::Handle(const CoordRequest& req, Done done) {
  switch (req.call_case()) {
    case CoordRequest::kTso:
      return HandleTso(req.tso(), done);
    case CoordRequest::kAllocId: {
      const uint32_t count = std::max<uint32_t>(1, req.alloc_id().count());
      if (count > kMaxAllocIds) {
        return done(Error(fmt::format("at most {} ids per call", kMaxAllocIds)));
      }
      return AllocIds(count, [count, done = std::move(done)](Result<uint64_t> first) {
        if (!first.ok()) return done(RetryLater(first.status().message()));
        CoordResponse r;
        r.mutable_alloc_id()->set_first(*first);
        r.mutable_alloc_id()->set_count(count);
        done(std::move(r));
      });
    }
    case CoordRequest::kStoreHeartbeat:
      return HandleStoreHeartbeat(req.store_heartbeat(), done);
    case CoordRequest::kRegionHeartbeat:
      return HandleRegionHeartbeat(req.region_heartbeat(), done);
    case CoordRequest::kJoin:
      return HandleJoin(req.join(), done);
    case CoordRequest::kGetRegion: {
      MetaCommand cmd;
      *cmd.mutable_get_region_by_key() = req.get_region();
      return HandleRead(std::move(cmd), std::move(done));
    }
    case CoordRequest::kGetRegionById: {
      MetaCommand cmd;
      *cmd.mutable_get_region_by_id() = req.get_region_by_id();
      return HandleRead(std::move(cmd), std::move(done));
    }
    case CoordRequest::kScanRegions: {
      MetaCommand cmd;
      *cmd.mutable_scan_regions() = req.scan_regions();
      return HandleRead(std::move(cmd), std::move(done));
    }
    case CoordRequest::kCluster:
      return HandleCluster(done);
    case CoordRequest::kAddOperator:
      return HandleAddOperator(req.add_operator(), done);
    case CoordRequest::kSetStoreState:
      return HandleSetStoreState(req.set_store_state(), done);
    default:
      return done(Error("unknown coordinator call"));
  }
}

void Coordinator::HandleTso(const TsoRequest& r, const Done& done) {
  const uint32_t count = std::max<uint32_t>(1, r.count());
  if (count > kMaxTsoCount) {
    return done(Error(fmt::format("at most {} timestamps per call", kMaxTsoCount)));
  }
  CoordResponse resp;
  Actions after;
  enum { kAnswer, kRefuse, kQueued } outcome = kRefuse;
  {
    std::lock_guard lock(mu_);
    if (ready_ && LeaseHeld()) {
      TakeTimestamps(count, &resp);
      outcome = kAnswer;
    } else if (ready_) {
      // No lease in this term (a leadership transfer was tried: its target may still win an
      // election that ignores leases; or the clock jumped). A caller that arrived before an
      // entry this leader appended commits in its term may be served after that: a majority
      // took the entry in this term after the caller came, so a new leader won its votes
      // later, serves later, and above the bound this one serves below.
      if (tso_waiting_.size() + tso_confirming_.size() >= kMaxTsoWaiters) {
        resp = RetryLater("too many timestamp calls wait for the coordinator's leadership check");
        outcome = kAnswer;
      } else {
        tso_waiting_.push_back(TsoWaiter{count, done});
        ConfirmLeadership(&after);
        outcome = kQueued;
      }
    }
  }
  Run(after);
  if (outcome == kAnswer) return done(std::move(resp));
  if (outcome == kRefuse) return done(Refusal());
}

void Coordinator::TakeTimestamps(uint32_t count, CoordResponse* resp) {
  if (logical_ + count >= kMaxLogical) {
    // This millisecond is used up: borrow the next one if the bound allows.
    if (physical_ms_ + 1 >= bound_ms_) {
      *resp = RetryLater("the timestamp oracle is waiting for its bound to be saved");
      return;
    }
    ++physical_ms_;
    logical_ = 0;
  }
  logical_ += count;
  resp->mutable_tso()->set_last(ComposeTs(physical_ms_, logical_));
  resp->mutable_tso()->set_count(count);
  counters_.tso_requests.fetch_add(1, std::memory_order_relaxed);
  counters_.tso_timestamps.fetch_add(count, std::memory_order_relaxed);
  const auto& bounds = CoordinatorCounters::kTsoBatchBounds;
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), count) - bounds.begin());
  counters_.tso_batch[bucket].fetch_add(1, std::memory_order_relaxed);
}

void Coordinator::ConfirmLeadership(Actions* after) {
  if (confirm_in_flight_ || tso_waiting_.empty()) return;
  confirm_in_flight_ = true;
  tso_confirming_ = std::move(tso_waiting_);
  tso_waiting_.clear();
  counters_.tso_leader_checks.fetch_add(1, std::memory_order_relaxed);
  // A command through raft, not a read: a read may be answered through another leader once
  // this one stepped down (a follower's ReadIndex), which confirms nothing about this term;
  // a proposal succeeds only if its entry commits in this leader's term.
  MetaCommand probe;
  probe.mutable_get_state();
  after->push_back([this, probe, term = term_] {
    meta_->ProposeInTerm(probe, term, [this, term](const Result<MetaResult>& r) {
      std::vector<std::pair<Done, CoordResponse>> answers;
      std::vector<Done> refused;
      Actions after;
      {
        std::lock_guard lock(mu_);
        if (!StillTerm(term)) return;  // Tick refused every waiter when the term ended
        confirm_in_flight_ = false;
        for (auto& w : tso_confirming_) {
          if (!r.ok()) {
            refused.push_back(std::move(w.done));
            continue;
          }
          CoordResponse resp;
          TakeTimestamps(w.count, &resp);
          answers.emplace_back(std::move(w.done), std::move(resp));
        }
        tso_confirming_.clear();
        ConfirmLeadership(&after);
      }
      Run(after);
      for (auto& [d, resp] : answers) d(std::move(resp));
      for (auto& d : refused) d(Refusal());
    });
  });
}

void Coordinator::AllocIds(uint32_t count, std::function<void(Result<uint64_t>)> done) {
  Actions after;
  {
    std::lock_guard lock(mu_);
    if (!ready_) {
      after.push_back([done = std::move(done)] {
        done(Status::Unavailable("the coordinator is not serving here"));
      });
    } else if (id_waiters_.empty() && end_id_ - next_id_ >= count) {
      const uint64_t first = next_id_;
      next_id_ += count;
      counters_.ids_allocated.fetch_add(count, std::memory_order_relaxed);
      after.push_back([done = std::move(done), first] { done(first); });
    } else {
      id_waiters_.push_back(IdWaiter{count, std::move(done)});
      RefillIds(&after);
    }
  }
  Run(after);
}

void Coordinator::RefillIds(Actions* after) {
  if (refilling_ || id_waiters_.empty()) return;
  refilling_ = true;
  uint64_t want = 0;
  for (const auto& w : id_waiters_) want += w.count;
  MetaCommand cmd;
  cmd.mutable_alloc_ids()->set_count(std::min(kMaxAllocIds, std::max(options_.id_batch, want)));
  after->push_back([this, cmd, term = term_] {
    meta_->Propose(cmd, [this, cmd, term](Result<MetaResult> r) {
      Actions after;
      {
        std::lock_guard lock(mu_);
        if (!StillTerm(term)) return;
        refilling_ = false;
        if (!r.ok() || !r->error().empty()) {
          const Status why = r.ok() ? Status::Internal(r->error()) : r.status();
          for (auto& w : id_waiters_) after.push_back([d = std::move(w.done), why] { d(why); });
          id_waiters_.clear();
        } else {
          // The unused rest of the old batch is skipped: ids are never reused, not dense.
          end_id_ = r->ids_end();
          next_id_ = end_id_ - cmd.alloc_ids().count();
          state_.set_id_high_water(end_id_);
          counters_.id_batches.fetch_add(1, std::memory_order_relaxed);
          size_t served = 0;
          for (auto& w : id_waiters_) {
            if (end_id_ - next_id_ < w.count) break;
            const uint64_t first = next_id_;
            next_id_ += w.count;
            counters_.ids_allocated.fetch_add(w.count, std::memory_order_relaxed);
            after.push_back([d = std::move(w.done), first] { d(first); });
            ++served;
          }
          id_waiters_.erase(id_waiters_.begin(), id_waiters_.begin() + static_cast<long>(served));
          RefillIds(&after);
        }
      }
      Run(after);
    });
  });
}

void Coordinator::FillAddresses(StoreHeartbeatResponse* r) const {
  r->set_cluster_id(state_.cluster().cluster_id());
  for (auto& m : meta_->Members()) *r->add_coordinators() = std::move(m);
  for (const auto& [id, s] : stores_) {
    if (s.state() == STORE_TOMBSTONE) continue;
    store::NodeAddress* a = r->add_stores();
    a->set_node_id(id);
    a->set_peer_addr(s.peer_addr());
  }
}

void Coordinator::PutStore(const StoreMeta& s, std::function<void(std::string)> done) {
  MetaCommand cmd;
  *cmd.mutable_put_store()->mutable_store() = s;
  meta_->Propose(cmd, [this, s, done = std::move(done)](Result<MetaResult> r) {
    if (!r.ok()) return done(std::string(r.status().message()));
    if (!r->error().empty()) return done(r->error());
    {
      std::lock_guard lock(mu_);
      stores_[s.id()] = s;
    }
    done("");
  });
}

void Coordinator::HandleStoreHeartbeat(const StoreHeartbeatRequest& req, const Done& done) {
  CoordResponse resp;
  std::optional<StoreMeta> to_persist;
  {
    std::lock_guard lock(mu_);
    if (ready_) {
      counters_.store_heartbeats.fetch_add(1, std::memory_order_relaxed);
      const uint64_t id = req.store().id();
      auto it = stores_.find(id);
      if (it != stores_.end() && it->second.state() == STORE_TOMBSTONE) {
        resp = Error(fmt::format("store {} was removed from the cluster (tombstone)", id));
      } else {
        StoreLive& live = store_live_[id];
        live.stats = req.stats();
        live.last_ms = NowMs();
        if (it == stores_.end() || !SameStore(it->second, req.store())) {
          StoreMeta s = req.store();
          s.set_state(it == stores_.end() ? STORE_UP : it->second.state());
          s.set_registered_ms(it == stores_.end() ? NowMs() : it->second.registered_ms());
          to_persist = std::move(s);
        }
        FillAddresses(resp.mutable_store_heartbeat());
        resp.mutable_store_heartbeat()->set_gc_safe_point(state_.gc_safe_point());
        // An operator's steps go out in region heartbeat replies: have its leader report now.
        for (const auto& [region, op] : operators_) {
          auto r = regions_.find(region);
          if (r != regions_.end() && r->second.leader() == id) {
            resp.mutable_store_heartbeat()->add_report_regions(region);
          }
        }
      }
    }
  }
  if (resp.has_error()) return done(std::move(resp));
  if (!resp.has_store_heartbeat()) return done(Refusal());
  if (to_persist) {
    Log()->info("coordinator: store {} at {} registered", to_persist->id(),
                to_persist->peer_addr());
    PutStore(*to_persist, [](const std::string& err) {
      if (!err.empty()) Log()->warn("coordinator: registering a store failed: {}", err);
    });
  }
  done(std::move(resp));
}

void Coordinator::HandleRegionHeartbeat(const RegionHeartbeat& hb, const Done& done) {
  CoordResponse resp;
  bool persist = false;
  {
    std::lock_guard lock(mu_);
    if (ready_) {
      counters_.region_heartbeats.fetch_add(1, std::memory_order_relaxed);
      const uint64_t id = hb.region().region().id();
      auto it = regions_.find(id);
      RegionHeartbeatResponse* out = resp.mutable_region_heartbeat();
      if (it != regions_.end() &&
          EpochOlder(hb.region().region().epoch(), it->second.region().epoch())) {
        counters_.stale_heartbeats.fetch_add(1, std::memory_order_relaxed);
        out->set_stale(true);
      } else {
        RegionLive& live = region_live_[id];
        live.last = hb;
        live.last_ms = NowMs();
        const uint64_t ms = std::max<uint32_t>(hb.interval_ms(), 1);
        live.read_bps = hb.bytes_read() * 1000 / ms;
        live.write_bps = hb.bytes_written() * 1000 / ms;
        if (live.read_bps + live.write_bps >= options_.hot_region_bytes) {
          live.hot_degree = std::min(live.hot_degree + 1, 2 * options_.hot_region_reports);
        } else {
          live.hot_degree = std::max(live.hot_degree - 1, 0);
        }
        persist = it == regions_.end() || !SameRegion(it->second, hb.region());
        std::vector<Operator> ops;
        AdvanceOperator(hb, &ops);
        for (auto& op : ops) *out->add_operators() = std::move(op);
        counters_.operators_sent.fetch_add(ops.size(), std::memory_order_relaxed);
        out->set_report_again(operators_.count(id) > 0);
      }
    }
  }
  if (!resp.has_region_heartbeat()) return done(Refusal());
  if (persist) {
    MetaCommand cmd;
    *cmd.mutable_put_region()->mutable_region() = hb.region();
    meta_->Propose(cmd, [this, reg = hb.region()](Result<MetaResult> r) {
      if (!r.ok() || r->stale()) return;
      std::lock_guard lock(mu_);
      // As the state machine did: regions the new range meets with older versions are gone.
      for (auto it = regions_.begin(); it != regions_.end();) {
        if (it->first != reg.region().id() && Overlap(it->second.region(), reg.region()) &&
            it->second.region().epoch().version() <= reg.region().epoch().version()) {
          region_live_.erase(it->first);
          it = regions_.erase(it);
        } else {
          ++it;
        }
      }
      regions_[reg.region().id()] = reg;
    });
  }
  done(std::move(resp));
}

void Coordinator::HandleJoin(const JoinRequest& req, const Done& done) {
  StoreMeta s = req.store();
  uint64_t cluster_id = 0;
  std::optional<CoordResponse> refused;
  {
    std::lock_guard lock(mu_);
    if (ready_) {
      cluster_id = state_.cluster().cluster_id();
      if (req.cluster_id() != 0 && req.cluster_id() != cluster_id) {
        refused = Error(fmt::format(
            "this data directory belongs to cluster {:016x}, but the nodes it joins are cluster "
            "{:016x}: start it with an empty --data-dir to join this cluster, or --join the "
            "cluster it belongs to",
            req.cluster_id(), cluster_id));
        refused->mutable_error()->set_cluster_mismatch(true);
      } else if (s.id() != 0) {
        auto it = stores_.find(s.id());
        if (it != stores_.end() && it->second.state() == STORE_TOMBSTONE) {
          refused = Error(
              fmt::format("store {} was removed from the cluster (tombstone); start with an empty "
                          "--data-dir to join as a new store",
                          s.id()));
        }
      } else {
        const int64_t now = NowMs();
        for (const auto& [id, other] : stores_) {
          if (other.peer_addr() != s.peer_addr() || other.state() == STORE_TOMBSTONE) continue;
          auto live = store_live_.find(id);
          if (live != store_live_.end() &&
              now - live->second.last_ms < options_.store_disconnected_ms) {
            refused =
                Error(fmt::format("store {} is up at {}: a new store cannot take the same address",
                                  id, s.peer_addr()));
          }
        }
      }
    }
  }
  if (refused) return done(std::move(*refused));
  if (cluster_id == 0) return done(Refusal());
  counters_.joins.fetch_add(1, std::memory_order_relaxed);
  auto finish = [this, cluster_id, done](StoreMeta s) {
    s.set_registered_ms(NowMs());
    const uint64_t id = s.id();
    PutStore(s, [this, cluster_id, id, done](const std::string& err) {
      if (!err.empty()) return done(RetryLater("registering the store failed: " + err));
      CoordResponse r;
      JoinResponse* j = r.mutable_join();
      j->set_store_id(id);
      j->set_cluster_id(cluster_id);
      for (auto& m : meta_->Members()) *j->add_coordinators() = std::move(m);
      Log()->info("coordinator: store {} joined", id);
      done(std::move(r));
    });
  };
  if (s.id() != 0) return finish(std::move(s));
  AllocIds(1, [s = std::move(s), finish, done](Result<uint64_t> id) mutable {
    if (!id.ok()) return done(RetryLater(std::string(id.status().message())));
    s.set_id(*id);
    finish(std::move(s));
  });
}

void Coordinator::HandleRead(MetaCommand cmd, Done done) {
  counters_.directory_reads.fetch_add(1, std::memory_order_relaxed);
  meta_->Read(std::move(cmd), [done = std::move(done)](Result<MetaResult> r) {
    if (!r.ok()) return done(RetryLater(std::string(r.status().message())));
    CoordResponse resp;
    *resp.mutable_regions() = std::move(*r);
    done(std::move(resp));
  });
}

void Coordinator::HandleCluster(const Done& done) {
  CoordResponse resp;
  {
    std::lock_guard lock(mu_);
    if (ready_) {
      ClusterResponse* c = resp.mutable_cluster();
      *c->mutable_state() = state_;
      c->mutable_state()->set_tso_bound_ms(bound_ms_);
      c->set_leader(meta_->self().value());
      for (auto& m : meta_->Members()) *c->add_coordinators() = std::move(m);
      const int64_t now = NowMs();
      for (const auto& [id, s] : stores_) {
        StoreView* v = c->add_stores();
        *v->mutable_meta() = s;
        auto live = store_live_.find(id);
        const StoreLive* l = live == store_live_.end() ? nullptr : &live->second;
        if (l) {
          *v->mutable_stats() = l->stats;
          v->set_last_heartbeat_ms(l->last_ms);
        }
        v->set_status(HealthName(StoreHealth(id, now)));
      }
      for (const auto& [id, op] : operators_) *c->add_operators() = op.view;
      for (const auto& op : finished_) *c->add_finished_operators() = op;
      for (const auto& [id, reg] : regions_) {
        RegionView* v = c->add_regions();
        *v->mutable_meta() = reg;
        auto live = region_live_.find(id);
        if (live != region_live_.end()) {
          *v->mutable_last() = live->second.last;
          v->set_last_heartbeat_ms(live->second.last_ms);
          v->set_read_bytes_per_sec(live->second.read_bps);
          v->set_write_bytes_per_sec(live->second.write_bps);
          v->set_hot(IsHot(id));
        }
      }
    }
  }
  if (!resp.has_cluster()) return done(Refusal());
  done(std::move(resp));
}

}  // namespace micedb::coordinator
