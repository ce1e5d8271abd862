#include "tests/sim/store_sim.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "common/logging.h"
#include "kv/state_machine.h"
#include "kv/value_format.h"
#include "store/keys.h"
#include "store/merge.h"
#include "tests/sim/digest.h"
#include "tests/sim/store_sim_checker.h"
#include "tests/sim/store_sim_cluster.h"
#include "tests/sim/tso_checker.h"

namespace micedb::sim {

namespace {

// Timestamp callers per node (each with one call at a time) and their pace.
constexpr int kTsoCallers = 2;
constexpr int64_t kTsoGapMaxMs = 20;    // between a caller's calls
constexpr int64_t kTsoRetryMs = 50;     // after a failed call
constexpr int64_t kAllocIdGapMs = 300;  // between AllocId calls

// How hostile one run is: network faults and the nemesis's mix, drawn from the seed.
struct StoreProfile {
  std::string name;
  NetFaults net;
  bool lease_reads = true;
  int nemesis_gap_min = 100, nemesis_gap_max = 800;  // ms
  int crash = 0, crash_leader = 0, restart = 0, partition = 0, heal = 0, transfer = 0;
  int membership = 0;
  int disk_full = 0;        // a node's disk fills (all writes, or only the log, or only applies)
  int client_gap_max = 15;  // ms between client operations
  int keys = 3;

  std::string Describe() const {
    return fmt::format(
        "{} drop={} dup={} delay={}/{}ms lease_reads={} nemesis={}..{}ms crash={}/{} restart={} "
        "partition={} heal={} transfer={} membership={} disk_full={}",
        name, net.drop, net.duplicate, net.long_delay, net.long_delay_max, lease_reads,
        nemesis_gap_min, nemesis_gap_max, crash, crash_leader, restart, partition, heal, transfer,
        membership, disk_full);
  }
};

StoreProfile DrawProfile(Random* rng, std::string_view forced) {
  static constexpr std::string_view kNames[] = {"calm",    "lossy", "partitions",
                                                "crashes", "mixed", "membership"};
  StoreProfile p;
  p.name = forced.empty() ? std::string(kNames[rng->Uniform(6)]) : std::string(forced);
  p.lease_reads = rng->OneIn(2);
  if (p.name != "calm") {
    static constexpr double kDrop[] = {0, 0.01, 0.05, 0.15};
    static constexpr double kDup[] = {0, 0.02, 0.05};
    static constexpr double kDelay[] = {0, 0.02, 0.1};
    p.net.drop = kDrop[rng->Uniform(4)];
    p.net.duplicate = kDup[rng->Uniform(3)];
    p.net.long_delay = kDelay[rng->Uniform(3)];
  }
  if (p.name == "lossy") {
    p.net.drop = std::max(p.net.drop, 0.05);
    p.transfer = 1;
  } else if (p.name == "partitions") {
    p.partition = 4, p.heal = 3, p.transfer = 1;
  } else if (p.name == "crashes") {
    p.crash = 3, p.crash_leader = 2, p.restart = 4;
  } else if (p.name == "mixed") {
    p.crash = 2, p.crash_leader = 1, p.restart = 3, p.partition = 2, p.heal = 2, p.transfer = 1;
    p.membership = 1;
  } else if (p.name == "membership") {
    p.membership = 6, p.crash = 1, p.restart = 2, p.partition = 1, p.heal = 1, p.transfer = 1;
  } else if (p.name == "disk") {
    // Only when forced (--profile disk, store_sim_test's disk seeds): the seeds' own draws
    // stay as they were.
    p.disk_full = 5, p.crash = 1, p.restart = 2, p.transfer = 1;
  }
  p.nemesis_gap_min = static_cast<int>(rng->Range(50, 200));
  p.nemesis_gap_max = p.nemesis_gap_min + static_cast<int>(rng->Range(100, 1000));
  p.client_gap_max = static_cast<int>(rng->Range(2, 25));
  return p;
}

class Run {
 public:
  Run(const StoreSimOptions& o, StoreSimResult* result, const std::string& dir)
      : o_(o),
        r_(result),
        rng_(o.seed),
        profile_(DrawProfile(&rng_, o.profile)),
        net_rng_(rng_.Fork()),
        client_rng_(rng_.Fork()),
        nemesis_rng_(rng_.Fork()),
        // Clock faults draw from their own stream: runs without them stay as they were.
        clock_rng_(HashCombine(o.seed, 0xF4EE2E)),
        clock_faults_(o.clock_faults < 0 ? clock_rng_.OneIn(2) : o.clock_faults > 0),
        cluster_(StoreClusterOptions{.nodes = o.nodes,
                                     .voters = 3,
                                     .seed = o.seed,
                                     .dir = dir,
                                     .lease_reads = profile_.lease_reads,
                                     .unsafe_local_reads = o.unsafe_local_reads,
                                     .clock_faults = clock_faults_,
                                     // Both ways followers learn the commit index, drawn
                                     // from a stream of its own.
                                     .lazy_commit = !Random(HashCombine(o.seed, 0x1A2C)).OneIn(4),
                                     .verbose = o.verbose},
                 &net_rng_),
        // The coordinator's callers draw from their own stream too.
        coord_rng_(HashCombine(o.seed, 0xC00D)),
        split_rng_(HashCombine(o.seed, 0x5B117)),
        merge_rng_(HashCombine(o.seed, 0x3E26E)),
        merge_timeout_ms_(Random(HashCombine(o.seed, 0x7173)).Range(800, 3000)),
        idle_rng_(HashCombine(o.seed, 0x1D1E)),
        checker_(&r_->violations),
        tso_(&r_->violations) {
    r_->profile = profile_.Describe();
    if (!cluster_.options().lazy_commit) r_->profile += " eager-commit";
    if (clock_faults_) {
      r_->profile += " clocks=";
      for (int i = 1; i <= o.nodes; ++i) {
        r_->profile += fmt::format("{}{:.3f}", i > 1 ? "," : "", cluster_.clock_rate(i));
      }
      r_->profile += " freezes";
    }
    cluster_.on_crash = [this](uint64_t id) {
      // The clients' calls pending at that node fail: their outcome is unknown.
      std::erase_if(ops_, [&](const auto& kv) {
        if (kv.second.node != id) return false;
        (kv.second.write ? r_->stats.writes_failed : r_->stats.reads_failed)++;
        return true;
      });
      // So do its timestamp calls: they stay unanswered in the checker.
      std::erase_if(tso_pending_, [&](const auto& kv) { return kv.second == id; });
    };
    cluster_.on_start = [this](uint64_t id) {
      for (int k = 0; k < kTsoCallers; ++k) {
        const uint64_t caller = ++next_tso_caller_;
        cluster_.After(coord_rng_.Range(1, kTsoGapMaxMs), id,
                       [this, id, caller] { TsoCall(id, caller); });
      }
    };
  }

  ~Run() { closing_ = true; }

  void Go() {
    if (Status st = cluster_.Start(); !st.ok()) return Fail("start", st.ToString());
    cluster_.set_faults(profile_.net);
    ScheduleClient();
    ScheduleNemesis();
    ScheduleAllocId();
    if (o_.splits) ScheduleSplit();
    if (o_.merges) {
      ScheduleMerge();
      DriveMerges();
    }
    if (clock_faults_) ScheduleFreeze();
    const int64_t heal_at = o_.fault_ms;
    RunUntil([] { return false; }, heal_at);
    if (!r_->ok()) return;

    // Heal: faults stop, every node comes back, the network is whole, clients stop.
    faults_on_ = false;
    for (int i = 1; i <= o_.nodes; ++i) {
      disk_gen_[i]++;
      cluster_.engine(i)->SetWriteFault(Status::OK());
    }
    CountSleeps();
    cluster_.network().Heal();
    cluster_.set_faults(NetFaults{});
    for (int i = 1; i <= o_.nodes; ++i) {
      if (Status st = cluster_.Restart(i); !st.ok()) return Fail("restart", st.ToString());
    }
    cluster_.Trace("healed: faults off, every node up");
    heal_ms_ = cluster_.now();
    MarkerLoop();
    RunUntil([this] { return live_ && (tso_live_ || !TsoLivenessChecked()); },
             cluster_.now() + o_.liveness_bound_ms);
    if (!r_->ok()) return;
    if (!live_) {
      return Fail("liveness",
                  fmt::format("no write succeeded within {} ms of healing", o_.liveness_bound_ms));
    }
    r_->stats.liveness_ms = cluster_.now() - heal_at;
    // Read every key once more through the routers, then let every call finish.
    for (int k = 0; k < profile_.keys; ++k) Issue(false, fmt::format("k{}", k));
    RunUntil([this] { return ops_.empty(); }, cluster_.now() + o_.converge_bound_ms);
    CheckConvergence();
    CountSleeps();
  }

  // The exact per-key linearizability check over the whole history, and the TSO's history.
  void Finish() {
    if (!r_->ok()) return;
    checker_.Finish();
    tso_.Finish(
        heal_ms_ >= 0 && TsoLivenessChecked() ? std::optional<int64_t>(heal_ms_) : std::nullopt,
        o_.liveness_bound_ms);
    r_->stats.tso_timestamps = tso_.timestamps();
    r_->stats.tso_failed = tso_.failures();
    for (auto& v : r_->violations) v.event = cluster_.events(), v.time = cluster_.now();
  }

 private:
  struct Op {
    uint64_t node = 0;
    bool write = false;
    std::string key;
    std::string value;
    uint64_t read_id = 0;
    bool marker = false;
  };

  void Fail(std::string check, std::string detail) {
    r_->violations.push_back(
        {std::move(check), std::move(detail), cluster_.events(), cluster_.now()});
  }

  // Runs events until `done` holds, the clock passes `deadline` or a check fails.
  template <typename Pred>
  void RunUntil(Pred done, int64_t deadline) {
    while (r_->ok() && !done() && cluster_.now() <= deadline) {
      if (!cluster_.Step()) break;
    }
    for (auto& v : r_->violations) {
      if (v.event == 0) v.event = cluster_.events(), v.time = cluster_.now();
    }
  }

  // Paused nodes are not up to anyone: they run nothing.
  uint64_t RandomUpNode(Random* rng) {
    std::vector<uint64_t> up;
    for (int i = 1; i <= o_.nodes; ++i) {
      if (cluster_.up(i) && !cluster_.frozen(i)) up.push_back(i);
    }
    return up.empty() ? 0 : up[rng->Uniform(up.size())];
  }

  void ScheduleClient() {
    cluster_.After(client_rng_.Range(1, profile_.client_gap_max), 0, [this] {
      if (!faults_on_) return;
      if (ops_.size() < 40 && !Idle()) {
        const bool write = client_rng_.OneIn(2);
        Issue(write, fmt::format("k{}", client_rng_.Uniform(profile_.keys)));
      }
      ScheduleClient();
    });
  }

  // With --idle: whether the clients are in a quiet phase now (phases alternate: active for
  // 0.2-1 s, quiet for 0.3-1.5 s).
  bool Idle() {
    if (!o_.idle) return false;
    while (cluster_.now() >= phase_end_) {
      phase_idle_ = !phase_idle_;
      phase_end_ += phase_idle_ ? idle_rng_.Range(300, 1500) : idle_rng_.Range(200, 1000);
    }
    return phase_idle_;
  }

  void CountSleeps() {
    for (int i = 1; i <= o_.nodes; ++i) {
      if (store::Store* s = cluster_.store(i)) {
        r_->stats.sleeps += s->counters().sleeps.load();
        r_->stats.silent_leader_wakes += s->counters().silent_leader_wakes.load();
      }
    }
  }

  // One client call: SET key <unique value> or GET key, through a random up node's router.
  void Issue(bool write, const std::string& key, bool marker = false, uint64_t node = 0) {
    if (node == 0) node = RandomUpNode(&client_rng_);
    if (node == 0 || cluster_.frozen(node)) return;
    const uint64_t id = ++next_op_;
    Op op{node, write, key, "", 0, marker};
    kv::Command cmd;
    if (write) {
      op.value = fmt::format("v{}", id);
      cmd.mutable_set()->set_key(key);
      cmd.mutable_set()->set_value(op.value);
      checker_.WriteInvoked(key, op.value);
    } else {
      cmd.mutable_get()->set_key(key);
      op.read_id = checker_.ReadInvoked(key);
    }
    cluster_.Trace(fmt::format("op {} at n{}: {} {}{}{}", id, node, write ? "SET" : "GET", key,
                               write ? " " : "", op.value));
    ops_[id] = op;
    cluster_.router(node)->Execute(
        std::move(cmd), kv::ReadMode::kLinearizable,
        [this, id](const Result<kv::CommandResult>& res) { Done(id, res); });
  }

  void Done(uint64_t id, const Result<kv::CommandResult>& res) {
    if (closing_) return;  // the stores are being stopped at the end of the run
    auto it = ops_.find(id);
    if (it == ops_.end()) return;  // its node crashed: already counted as failed
    const Op op = it->second;
    ops_.erase(it);
    const bool ok = res.ok() && res->kind_case() != kv::CommandResult::kError;
    std::string outcome = res.ok() ? (ok ? "ok" : res->error().message()) : res.status().ToString();
    if (op.write) {
      if (ok) {
        checker_.WriteAcked(op.value);
        r_->stats.writes_acked++;
        if (op.marker) live_ = true;
      } else {
        r_->stats.writes_failed++;
        if (!res.ok() && res.status().code() == StatusCode::kUnavailable) {
          unavailable_.insert(op.value);
        }
      }
    } else if (ok) {
      std::optional<std::string> value;
      if (res->kind_case() == kv::CommandResult::kBulk) value = res->bulk();
      outcome = value ? "\"" + *value + "\"" : "nil";
      r_->stats.reads_ok++;
      checker_.ReadReturned(op.read_id, value);
      if (value && unavailable_.erase(*value)) {
        // kv::KvBackend promises that an Unavailable write was not applied (clients retry
        // TRYAGAIN blindly); a write whose outcome is unknown must end TimedOut.
        r_->stats.unavailable_applied++;
        Fail("unavailable-write-applied",
             fmt::format("{} was reported Unavailable, yet a read returned it", *value));
      }
    } else {
      r_->stats.reads_failed++;
    }
    cluster_.Trace(fmt::format("op {} done: {}", id, outcome));
  }

  // After healing: a write every 200 ms until one succeeds.
  void MarkerLoop() {
    if (live_) return;
    bool pending = false;
    for (const auto& [id, op] : ops_) pending |= op.marker;
    // At a member of k0's region: a node without a replica waits for the coordinator (to
    // come) to tell its router where the region is, and the simulation runs no region
    // heartbeats, so the coordinator knows only region 1.
    uint64_t region = 1;
    for (int i = 1; i <= o_.nodes; ++i) {
      if (!cluster_.up(i)) continue;
      if (auto r = cluster_.store(i)->RegionForKey(kv::EncodeRawKey("k0"))) {
        region = r->value();
        break;
      }
    }
    const uint64_t leader = cluster_.AnyLeader(region);
    std::vector<uint64_t> members =
        leader ? cluster_.Members(leader, region) : std::vector<uint64_t>{};
    const uint64_t at = members.empty() ? 0 : members[client_rng_.Uniform(members.size())];
    if (!pending) Issue(true, "k0", /*marker=*/true, at);
    cluster_.After(200, 0, [this] { MarkerLoop(); });
  }

  // The coordinator serves timestamps only under the meta region's lease, which the stores
  // grant only with lease reads on.
  bool TsoLivenessChecked() const { return profile_.lease_reads; }

  // One timestamp caller of node `id`: a call, and when it is answered the next one, during
  // the faults and after healing until a call made after it got a timestamp.
  void TsoCall(uint64_t id, uint64_t caller) {
    if (!faults_on_ && tso_live_) return;
    coordinator::CoordinatorClient* client = cluster_.coordinator_client(id);
    if (client == nullptr) return;
    const uint64_t call = tso_.Invoked(caller, cluster_.now());
    tso_pending_[call] = id;
    const bool after_heal = !faults_on_;
    client->GetTimestamp([this, id, caller, call, after_heal](Result<uint64_t> r) {
      if (closing_ || !tso_pending_.erase(call)) return;  // its node crashed
      tso_.Completed(call, cluster_.now(), r.ok() ? std::optional<uint64_t>(*r) : std::nullopt);
      cluster_.Trace(fmt::format("tso {} caller {} at n{}: {}", call, caller, id,
                                 r.ok() ? std::to_string(*r) : r.status().ToString()));
      if (r.ok() && after_heal) tso_live_ = true;
      cluster_.After(r.ok() ? coord_rng_.Range(1, kTsoGapMaxMs) : kTsoRetryMs, id,
                     [this, id, caller] { TsoCall(id, caller); });
    });
    cluster_.PollSoon(id);
  }

  // Now and then, a few ids through a random node's client: no id may be handed out twice.
  void ScheduleAllocId() {
    cluster_.After(coord_rng_.Range(1, kAllocIdGapMs), 0, [this] {
      if (!faults_on_) return;
      const uint64_t id = RandomUpNode(&coord_rng_);
      if (id != 0) {
        coordinator::CoordRequest req;
        const uint32_t count = static_cast<uint32_t>(coord_rng_.Range(1, 5));
        req.mutable_alloc_id()->set_count(count);
        const uint64_t life = cluster_.life(id);
        cluster_.coordinator_client(id)->Call(
            std::move(req), [this, id, life, count](Result<coordinator::CoordResponse> r) {
              if (closing_ || cluster_.life(id) != life) return;
              if (!r.ok() || !r->has_alloc_id()) return;
              const uint64_t first = r->alloc_id().first();
              cluster_.Trace(fmt::format("ids [{}, {}) to n{}", first, first + count, id));
              if (r->alloc_id().count() != count) {
                Fail("id-count", fmt::format("asked for {} ids, got {} from {}", count,
                                             r->alloc_id().count(), first));
              }
              for (uint64_t i = first; i < first + r->alloc_id().count(); ++i) {
                if (!ids_.insert(i).second) {
                  Fail("id-unique", fmt::format("id {} handed out twice (the second time to n{}, "
                                                "in [{}, {}))",
                                                i, id, first, first + count));
                }
              }
              r_->stats.ids_allocated += r->alloc_id().count();
            });
        cluster_.PollSoon(id);
      }
      ScheduleAllocId();
    });
  }

  // Now and then, at a random data region's leader, a split at a random key inside it (keys
  // between the clients' keys too, so that regions get small), with a fresh region id. And
  // every store's regions are checked for overlaps.
  void ScheduleSplit() {
    cluster_.After(split_rng_.Range(50, 400), 0, [this] {
      CheckNoOverlap();
      if (!faults_on_) return;
      std::vector<std::pair<uint64_t, store::RegionDescriptor>> led;  // (node, region)
      for (int i = 1; i <= o_.nodes; ++i) {
        if (!cluster_.up(i) || cluster_.frozen(i)) continue;
        for (const auto& ri : cluster_.store(i)->Regions()) {
          if (ri.raft.role == raft::Role::kLeader && !store::IsMetaRegion(ri.descriptor.id())) {
            led.emplace_back(i, ri.descriptor);
          }
        }
      }
      if (!led.empty()) {
        const auto& [node, desc] = led[split_rng_.Uniform(led.size())];
        std::string key = fmt::format("rk{}", split_rng_.Uniform(profile_.keys));
        if (split_rng_.OneIn(2)) key += fmt::format("{}", split_rng_.Uniform(10));
        region::RegionRequest req;
        req.mutable_header()->set_region_id(desc.id());
        *req.mutable_header()->mutable_epoch() = desc.epoch();
        req.mutable_admin()->mutable_split()->set_split_key(key);
        req.mutable_admin()->mutable_split()->set_new_region_id(next_region_id_++);
        const std::string what = fmt::format("split region {} at {} -> region {}", desc.id(), key,
                                             req.admin().split().new_region_id());
        cluster_.Trace(fmt::format("nemesis: at n{}: {}", node, what));
        cluster_.store(node)->RunAdmin(std::move(req), [this,
                                                        what](const region::RegionResponse& r) {
          if (closing_) return;
          cluster_.Trace(fmt::format("{}: {}", what, r.has_error() ? r.error().message() : "done"));
        });
        cluster_.PollSoon(node);
        r_->stats.splits++;
      }
      ScheduleSplit();
    });
  }

  // Now and then, at a random data region's leader, a freeze for a merge into a neighbour that
  // the leader's store holds with the same members.
  void ScheduleMerge() {
    cluster_.After(merge_rng_.Range(100, 600), 0, [this] {
      if (!faults_on_) return;
      std::vector<std::tuple<uint64_t, store::RegionDescriptor, store::RegionDescriptor>> can;
      for (int i = 1; i <= o_.nodes; ++i) {
        if (!cluster_.up(i) || cluster_.frozen(i)) continue;
        const auto regions = cluster_.store(i)->Regions();
        for (const auto& s : regions) {
          if (s.raft.role != raft::Role::kLeader || s.descriptor.has_merging()) continue;
          for (const auto& t : regions) {
            if (store::MergeProblem(s.descriptor, t.descriptor).empty()) {
              can.emplace_back(i, s.descriptor, t.descriptor);
            }
          }
        }
      }
      if (!can.empty()) {
        const auto& [node, s, t] = can[merge_rng_.Uniform(can.size())];
        const std::string what = fmt::format("merge region {} into region {}", s.id(), t.id());
        cluster_.Trace(fmt::format("nemesis: at n{}: {}", node, what));
        cluster_.store(node)->RunAdmin(
            store::PrepareMergeRequest(s, t), [this, what](const region::RegionResponse& r) {
              if (closing_) return;
              cluster_.Trace(
                  fmt::format("{}: {}", what, r.has_error() ? r.error().message() : "frozen"));
            });
        cluster_.PollSoon(node);
        r_->stats.merges++;
      }
      ScheduleMerge();
    });
  }

  // Every 100 ms, during the faults and after: each frozen region's leader takes the next step
  // of its merge, as Node::CheckMerges does (with its timeout: a merge led by the same node for
  // merge_timeout_ms_ with a member still without the freeze is refused at the target).
  void DriveMerges() {
    cluster_.After(100, 0, [this] {
      if (closing_) return;
      std::map<std::pair<int, uint64_t>, int64_t> frozen_since;
      for (int i = 1; i <= o_.nodes; ++i) {
        if (!cluster_.up(i) || cluster_.frozen(i)) continue;
        const auto regions = cluster_.store(i)->Regions();
        for (const auto& s : regions) {
          if (s.raft.role != raft::Role::kLeader || !s.descriptor.has_merging()) continue;
          const uint64_t target = s.descriptor.merging().target().id();
          const store::RegionInfo* t = nullptr;
          for (const auto& r : regions) {
            if (r.descriptor.id() == target) t = &r;
          }
          const auto key = std::make_pair(i, s.descriptor.id());
          int64_t since = cluster_.now();
          if (auto it = merge_frozen_since_.find(key); it != merge_frozen_since_.end()) {
            since = it->second;
          }
          frozen_since[key] = since;
          store::MergeStep step =
              store::NextMergeStep(s, t, cluster_.now() - since >= merge_timeout_ms_);
          if (step.kind == store::MergeStep::Kind::kWait) continue;
          if (step.kind == store::MergeStep::Kind::kTransfer) {
            cluster_.Trace(fmt::format("merge driver: at n{}: region {} to n{}", i,
                                       s.descriptor.id(), step.transfer_to.value()));
            cluster_.store(i)->TransferLeader(RegionId(s.descriptor.id()), step.transfer_to);
            cluster_.PollSoon(i);
            continue;
          }
          const auto kind = step.kind;
          const bool at_target = kind != store::MergeStep::Kind::kRollback;
          const uint64_t at = at_target ? cluster_.AnyLeader(target) : static_cast<uint64_t>(i);
          if (at == 0 || !cluster_.up(at) || cluster_.frozen(at)) continue;
          const char* verb = kind == store::MergeStep::Kind::kCommit   ? "commit merge of"
                             : kind == store::MergeStep::Kind::kRefuse ? "refuse merge of"
                                                                       : "roll back merge of";
          const std::string what =
              fmt::format("{} region {} into region {}", verb, s.descriptor.id(), target);
          cluster_.Trace(fmt::format("merge driver: at n{}: {}", at, what));
          cluster_.store(at)->RunAdmin(
              std::move(step.request), [this, what, kind](const region::RegionResponse& r) {
                if (closing_) return;
                if (!r.has_error()) {
                  if (kind == store::MergeStep::Kind::kCommit) r_->stats.merges_committed++;
                  if (kind == store::MergeStep::Kind::kRollback) r_->stats.merges_rolled_back++;
                  if (kind == store::MergeStep::Kind::kRefuse) r_->stats.merges_refused++;
                }
                cluster_.Trace(
                    fmt::format("{}: {}", what, r.has_error() ? r.error().message() : "done"));
              });
          cluster_.PollSoon(at);
        }
      }
      merge_frozen_since_ = std::move(frozen_since);
      DriveMerges();
    });
  }

  // A store never holds two initialized regions whose ranges overlap.
  void CheckNoOverlap() {
    for (int i = 1; i <= o_.nodes; ++i) {
      if (!cluster_.up(i)) continue;
      std::vector<store::RegionDescriptor> ds;
      for (const auto& ri : cluster_.store(i)->Regions()) {
        if (ri.descriptor.conf_state().voters_size() > 0) ds.push_back(ri.descriptor);
      }
      std::sort(ds.begin(), ds.end(),
                [](const auto& a, const auto& b) { return a.start_key() < b.start_key(); });
      for (size_t j = 1; j < ds.size(); ++j) {
        const auto& a = ds[j - 1];
        if (store::EngineRangeEnd(a.end_key()) > ds[j].start_key()) {
          Fail("region-overlap",
               fmt::format("n{} holds region {} [{:?}, {:?}) and region {} [{:?}, {:?})", i, a.id(),
                           a.start_key(), a.end_key(), ds[j].id(), ds[j].start_key(),
                           ds[j].end_key()));
          return;
        }
      }
    }
  }

  void ScheduleNemesis() {
    cluster_.After(nemesis_rng_.Range(profile_.nemesis_gap_min, profile_.nemesis_gap_max), 0,
                   [this] {
                     if (!faults_on_) return;
                     Nemesis();
                     ScheduleNemesis();
                   });
  }

  // A paused VM, the leader's more often than not: 20-400 ms, every 0.3-1.5 s.
  void ScheduleFreeze() {
    cluster_.After(clock_rng_.Range(300, 1500), 0, [this] {
      if (!faults_on_) return;
      const uint64_t leader = cluster_.AnyLeader();
      const uint64_t id = leader && clock_rng_.OneIn(2) ? leader : RandomUpNode(&clock_rng_);
      const int64_t ms = clock_rng_.Range(20, 400);
      if (id != 0) {
        cluster_.Trace(fmt::format("nemesis: n{} paused for {} ms", id, ms));
        cluster_.Freeze(id, ms);
        r_->stats.freezes++;
      }
      ScheduleFreeze();
    });
  }

  void Nemesis() {
    const StoreProfile& p = profile_;
    const int total = p.crash + p.crash_leader + p.restart + p.partition + p.heal + p.transfer +
                      p.membership + p.disk_full;
    if (total == 0) return;
    int pick = static_cast<int>(nemesis_rng_.Uniform(total));
    Random* rng = &nemesis_rng_;
    auto take = [&pick](int w) {
      pick -= w;
      return pick < 0;
    };
    int up = 0;
    for (int i = 1; i <= o_.nodes; ++i) up += cluster_.up(i);
    if (take(p.crash + p.crash_leader)) {
      uint64_t victim =
          pick + p.crash_leader >= 0 ? cluster_.AnyLeader() : 0;  // crash_leader of the weight
      if (victim == 0) victim = RandomUpNode(rng);
      if (victim == 0 || up <= 1) return;
      const size_t unsynced = cluster_.engine(victim)->UnsyncedWriteCount();
      const size_t keep = rng->OneIn(3) ? rng->Uniform(unsynced + 1) : 0;
      cluster_.Trace(fmt::format("nemesis: n{} loses power (keeps {} of {} unsynced writes)",
                                 victim, keep, unsynced));
      cluster_.Crash(victim, keep);
      r_->stats.crashes++;
    } else if (take(p.restart)) {
      std::vector<uint64_t> down;
      for (int i = 1; i <= o_.nodes; ++i) {
        if (!cluster_.up(i)) down.push_back(i);
      }
      if (down.empty()) return;
      const uint64_t id = down[rng->Uniform(down.size())];
      cluster_.Trace(fmt::format("nemesis: n{} restarts", id));
      if (Status st = cluster_.Restart(id); !st.ok()) Fail("restart", st.ToString());
    } else if (take(p.partition)) {
      Network& net = cluster_.network();
      const uint64_t leader = cluster_.AnyLeader();
      switch (rng->Uniform(4)) {
        case 0: {  // a minority split off
          std::vector<NodeId> side;
          const uint64_t n = 1 + rng->Uniform(o_.nodes / 2);
          for (uint64_t i = 0; i < n; ++i) side.push_back(NodeId(1 + rng->Uniform(o_.nodes)));
          net.Split(side);
          break;
        }
        case 1:  // the leader isolated
          if (leader) net.Split({NodeId(leader)});
          break;
        case 2:  // a node (often the leader) cut one way
          net.Isolate(NodeId(leader && rng->OneIn(2) ? leader : 1 + rng->Uniform(o_.nodes)),
                      rng->OneIn(2), false);
          break;
        default:  // random one-way cuts
          for (int i = 0; i < 3; ++i) {
            net.Cut(NodeId(1 + rng->Uniform(o_.nodes)), NodeId(1 + rng->Uniform(o_.nodes)));
          }
      }
      cluster_.Trace("nemesis: partition " + net.Describe());
    } else if (take(p.membership)) {
      ChangeMembership();
    } else if (take(p.disk_full)) {
      DiskFull(rng);
    } else if (take(p.heal)) {
      cluster_.network().Heal();
      cluster_.Trace("nemesis: heal");
    } else {
      // One time in three the meta region's: the coordinator changes hands while it serves.
      const uint64_t region = o_.meta_transfers && rng->OneIn(3) ? store::kMetaRegionId : 1;
      const uint64_t leader = cluster_.AnyLeader(region);
      const uint64_t target = 1 + rng->Uniform(o_.nodes);
      if (leader == 0 || target == leader) return;
      cluster_.Trace(fmt::format("nemesis: transfer region {}'s leadership n{} -> n{}", region,
                                 leader, target));
      cluster_.store(leader)->TransferLeader(RegionId(region), NodeId(target));
      cluster_.PollSoon(leader);
      r_->stats.transfers++;
    }
  }

  // A node's disk fills for a while (store/disk_alarm.h): every write fails for want of space,
  // or only the log's, or only the applies'; the space comes back later (a later fill of the
  // same node extends it). Nothing acknowledged may be lost and every replica must end equal.
  void DiskFull(Random* rng) {
    uint64_t victim = rng->OneIn(2) ? cluster_.AnyLeader() : 0;
    if (victim == 0) victim = RandomUpNode(rng);
    if (victim == 0) return;
    const int kind = static_cast<int>(rng->Uniform(3));
    std::function<bool(const storage::WriteBatch&)> which;
    if (kind > 0) {
      const bool data = kind == 2;
      which = [data](const storage::WriteBatch& b) {
        for (const auto& op : b.ops()) {
          if ((op.cf == storage::Cf::kDefault) == data) return true;
        }
        return false;
      };
    }
    const int64_t for_ms = rng->Range(20, 1500);
    cluster_.Trace(fmt::format("nemesis: n{}'s disk is full ({}) for {} ms", victim,
                               kind == 0   ? "every write"
                               : kind == 1 ? "raft log"
                                           : "applies",
                               for_ms));
    cluster_.engine(victim)->SetWriteFault(
        Status::ResourceExhausted("No space left on device (simulated)"), std::move(which));
    const uint64_t gen = ++disk_gen_[victim];
    r_->stats.disk_fills++;
    cluster_.After(for_ms, 0, [this, victim, gen] {
      if (disk_gen_[victim] != gen) return;
      cluster_.Trace(fmt::format("nemesis: n{}'s disk has space again", victim));
      cluster_.engine(victim)->SetWriteFault(Status::OK());
    });
  }

  // At the leader, as the admin path does (server/node_service.cc): add a node that holds no
  // replica as a learner, promote a learner, demote a voter, or remove a voter or learner.
  // The leader itself is never demoted or removed (the admin path transfers leadership first).
  void ChangeMembership() {
    Random* rng = &nemesis_rng_;
    const uint64_t leader = cluster_.AnyLeader();
    if (leader == 0) return;
    std::vector<uint64_t> voters, learners, others;
    for (const auto& ri : cluster_.store(leader)->Regions()) {
      if (ri.descriptor.id() != 1) continue;
      for (uint64_t v : ri.descriptor.conf_state().voters()) voters.push_back(v);
      for (uint64_t l : ri.descriptor.conf_state().learners()) learners.push_back(l);
    }
    for (int i = 1; i <= o_.nodes; ++i) {
      const uint64_t id = static_cast<uint64_t>(i);
      if (!removed_.contains(id) && std::find(voters.begin(), voters.end(), id) == voters.end() &&
          std::find(learners.begin(), learners.end(), id) == learners.end()) {
        others.push_back(id);
      }
    }
    std::erase(voters, leader);
    raft::ConfChange cc;
    auto pick = [rng](const std::vector<uint64_t>& v) { return v[rng->Uniform(v.size())]; };
    // What can be done now, weighted: removals are rarer, since a removed node never comes back.
    std::vector<int> kinds;
    auto can = [&kinds](bool ok, int kind, int weight) {
      for (int i = 0; ok && i < weight; ++i) kinds.push_back(kind);
    };
    can(!others.empty(), 0, 3);
    can(!learners.empty(), 1, 3);
    can(voters.size() >= 3, 2, 2);  // keep at least 3 voters, the leader included
    can(!learners.empty() || voters.size() >= 3, 3, 1);
    if (kinds.empty()) return;
    switch (kinds[rng->Uniform(kinds.size())]) {
      case 0: {
        cc.set_type(raft::ADD_LEARNER);
        cc.set_node_id(pick(others));
        store::ConfChangeContext ctx;
        ctx.set_peer_addr(fmt::format("n{}", cc.node_id()));
        cc.set_context(ctx.SerializeAsString());
        break;
      }
      case 1:
        cc.set_type(raft::ADD_VOTER);
        cc.set_node_id(pick(learners));
        break;
      case 2:
        cc.set_type(raft::ADD_LEARNER);
        cc.set_node_id(pick(voters));
        break;
      default: {
        std::vector<uint64_t> removable = learners;
        if (voters.size() >= 3) removable.insert(removable.end(), voters.begin(), voters.end());
        cc.set_type(raft::REMOVE_NODE);
        cc.set_node_id(pick(removable));
        removed_.insert(cc.node_id());
      }
    }
    const std::string what =
        fmt::format("{} n{}", raft::ConfChangeType_Name(cc.type()), cc.node_id());
    cluster_.Trace(fmt::format("nemesis: at n{}: {}", leader, what));
    cluster_.store(leader)->ChangeMembership(RegionId(1), cc, [this, what](const Status& st) {
      if (!closing_) cluster_.Trace(fmt::format("membership {}: {}", what, st.ToString()));
    });
    cluster_.PollSoon(leader);
    r_->stats.conf_changes++;
  }

  // Every data region, as its leader describes it, with the nodes that hold a replica of it.
  struct Target {
    store::RegionDescriptor desc;
    std::vector<uint64_t> members;
  };
  // Empty when some region has no leader now.
  std::vector<Target> Targets() {
    std::set<uint64_t> ids;
    for (int i = 1; i <= o_.nodes; ++i) {
      if (!cluster_.up(i)) continue;
      for (const auto& ri : cluster_.store(i)->Regions()) {
        if (ri.descriptor.conf_state().voters_size() > 0 &&
            !store::IsMetaRegion(ri.descriptor.id())) {
          ids.insert(ri.descriptor.id());
        }
      }
    }
    std::vector<Target> out;
    for (uint64_t id : ids) {
      const uint64_t leader = cluster_.AnyLeader(id);
      if (leader == 0) return {};
      auto info = cluster_.store(leader)->RegionInfoOf(RegionId(id));
      if (!info) return {};
      Target t{info->descriptor, {}};
      for (uint64_t v : t.desc.conf_state().voters()) t.members.push_back(v);
      for (uint64_t l : t.desc.conf_state().learners()) t.members.push_back(l);
      out.push_back(std::move(t));
    }
    return out;
  }

  // Every merge has ended: committed (the source is gone) or rolled back. True (and the run
  // failed) when one has not.
  bool CheckMergesEnded(const std::vector<Target>& targets) {
    for (const Target& t : targets) {
      if (t.desc.has_merging()) {
        std::string where;
        for (int i = 1; i <= o_.nodes; ++i) {
          if (!cluster_.up(i)) continue;
          for (const auto& ri : cluster_.store(i)->Regions()) {
            const uint64_t id = ri.descriptor.id();
            if (id != t.desc.id() && id != t.desc.merging().target().id()) continue;
            where += fmt::format("; n{}: region {} {} term {} leader n{} v{}/{} applied {}{}", i,
                                 id, raft::RoleName(ri.raft.role), ri.raft.term.value(),
                                 ri.raft.leader.value(), ri.descriptor.epoch().version(),
                                 ri.descriptor.epoch().conf_ver(), ri.applied_index,
                                 ri.asleep ? " asleep" : "");
            where +=
                fmt::format(" commit {} truncated {}", ri.raft.commit.value(), ri.truncated_index);
            for (const auto& [n, pr] : ri.raft.progress) {
              where += fmt::format(" n{}@{}/{}/next{}/{}", n.value(), pr.match.value(),
                                   static_cast<int>(pr.state), pr.next.value(),
                                   pr.recent_active ? "active" : "inactive");
            }
          }
        }
        Fail("merge-stuck",
             fmt::format("region {} is still frozen for a merge into region {} (at {}, "
                         "target epoch v{}/{}){}",
                         t.desc.id(), t.desc.merging().target().id(), t.desc.merging().index(),
                         t.desc.merging().target().epoch().version(),
                         t.desc.merging().target().epoch().conf_ver(), where));
        return true;
      }
    }
    return false;
  }

  // Every replica of every region applies the same index, then holds the same region data; the
  // regions tile the keyspace. The indexes are those the stores publish (after a change of
  // leader or descriptor, else every Store::kTickPublishMs), so they must hold still for longer
  // than that before the engines are compared, and a paused node's do not count.
  void CheckConvergence() {
    constexpr int64_t kStableMs = store::Store::kTickPublishMs + 100;
    std::vector<std::pair<uint64_t, uint64_t>> applied;  // (region, index), as last seen
    int64_t since = -1;
    std::vector<Target> targets;
    auto same_index = [&] {
      targets = Targets();
      std::vector<std::pair<uint64_t, uint64_t>> now;
      bool all = !targets.empty();
      for (const Target& t : targets) {
        std::optional<uint64_t> common;
        for (uint64_t i : t.members) {
          if (!all) break;
          auto ri = cluster_.up(i) ? cluster_.store(i)->RegionInfoOf(RegionId(t.desc.id()))
                                   : std::nullopt;
          // A paused node has not caught up yet, whatever it last published.
          if (!ri || ri->descriptor.conf_state().voters_size() == 0 || cluster_.frozen(i)) {
            all = false;
            break;
          }
          if (common && *common != ri->applied_index) all = false;
          if (ri->raft.commit.value() != ri->applied_index) all = false;
          common = ri->applied_index;
        }
        if (!all || !common) {
          all = false;
          break;
        }
        // A merge under way ends (committed or rolled back) before the replicas count as
        // converged; one that never does fails the run below (merge-stuck).
        if (t.desc.has_merging()) all = false;
        now.emplace_back(t.desc.id(), *common);
      }
      if (!all || now != applied) {
        applied = all ? now : decltype(now){};
        since = cluster_.now();
        return false;
      }
      return cluster_.now() - since >= kStableMs;
    };
    RunUntil(same_index, cluster_.now() + o_.converge_bound_ms);
    if (!r_->ok()) return;
    if (cluster_.now() - since < kStableMs || applied.empty()) {
      if (CheckMergesEnded(targets)) return;
      std::string where;
      for (int i = 1; i <= o_.nodes; ++i) {
        if (!cluster_.up(i)) continue;
        for (const auto& ri : cluster_.store(i)->Regions()) {
          where += fmt::format(" n{}: region {} applied {} commit {}", i, ri.descriptor.id(),
                               ri.applied_index, ri.raft.commit.value());
        }
      }
      return Fail("convergence", "replicas did not apply the same index in time:" + where);
    }
    for (int i = 1; i <= o_.nodes; ++i) {
      r_->stats.snapshots_applied += cluster_.store(i)->counters().snapshots_applied;
    }
    r_->stats.regions = targets.size();
    CheckNoOverlap();
    // The regions tile the keyspace: from the empty key to +infinity, no gap, no overlap.
    std::sort(targets.begin(), targets.end(), [](const Target& a, const Target& b) {
      return a.desc.start_key() < b.desc.start_key();
    });
    std::string expect_start;
    for (size_t j = 0; j < targets.size(); ++j) {
      const auto& d = targets[j].desc;
      const bool last = j + 1 == targets.size();
      if (d.start_key() != expect_start || (last != d.end_key().empty())) {
        return Fail("region-tiling",
                    fmt::format("region {} is [{:?}, {:?}) where the previous region ended at {:?}",
                                d.id(), d.start_key(), d.end_key(), expect_start));
      }
      expect_start = d.end_key();
    }
    for (const Target& t : targets) {
      std::map<uint64_t, std::vector<int>> by_hash;
      for (uint64_t i : t.members) by_hash[RegionHash(i, t.desc)].push_back(static_cast<int>(i));
      if (by_hash.size() > 1) {
        std::string detail =
            fmt::format("region {}'s data differs between its replicas:", t.desc.id());
        for (const auto& [h, nodes] : by_hash) {
          detail += fmt::format(" {:016x} on n{}", h, fmt::join(nodes, ",n"));
        }
        for (uint64_t i : t.members) {
          if (auto ri = cluster_.store(i)->RegionInfoOf(RegionId(t.desc.id()))) {
            detail += fmt::format(" [n{} applied {} commit {} term {} role {}]", i,
                                  ri->applied_index, ri->raft.commit.value(), ri->raft.term.value(),
                                  static_cast<int>(ri->raft.role));
          }
        }
        return Fail("replica-divergence", detail + FirstDifference(by_hash, t.desc));
      }
    }
    if (CheckMergesEnded(targets)) return;
    cluster_.Trace(fmt::format("converged: {} regions", targets.size()));
  }

  // The region's part of the default column family on node `id`.
  std::map<std::string, std::string> RegionData(uint64_t id, const store::RegionDescriptor& d) {
    storage::ReadOptions ro;
    ro.lower_bound = d.start_key();
    ro.upper_bound = store::EngineRangeEnd(d.end_key());
    auto it = cluster_.engine(id)->NewIterator(storage::Cf::kDefault, ro);
    std::map<std::string, std::string> out;
    for (it->SeekToFirst(); it->Valid(); it->Next()) out[std::string(it->key())] = it->value();
    return out;
  }

  uint64_t RegionHash(uint64_t id, const store::RegionDescriptor& d) {
    uint64_t h = 0;
    for (const auto& [k, v] : RegionData(id, d)) {
      h = HashCombine(HashCombine(h, HashBytes(k)), HashBytes(v));
    }
    return h;
  }

  // The first key on which the first nodes of two groups differ.
  std::string FirstDifference(const std::map<uint64_t, std::vector<int>>& by_hash,
                              const store::RegionDescriptor& d) {
    const int a = by_hash.begin()->second.front(), b = std::next(by_hash.begin())->second.front();
    auto da = RegionData(a, d), db = RegionData(b, d);
    auto show = [](const std::map<std::string, std::string>& m, const std::string& k) {
      auto it = m.find(k);
      return it == m.end() ? std::string("absent") : fmt::format("{:?}", it->second);
    };
    for (auto ia = da.begin(), ib = db.begin(); ia != da.end() || ib != db.end();) {
      std::string k =
          ib == db.end() || (ia != da.end() && ia->first < ib->first) ? ia->first : ib->first;
      if (show(da, k) != show(db, k)) {
        return fmt::format("; first difference at key {:?}: n{} has {}, n{} has {}", k, a,
                           show(da, k), b, show(db, k));
      }
      if (ia != da.end() && ia->first == k) ++ia;
      if (ib != db.end() && ib->first == k) ++ib;
    }
    return "";
  }

  const StoreSimOptions& o_;
  StoreSimResult* r_;
  Random rng_;
  StoreProfile profile_;
  std::map<uint64_t, uint64_t> disk_gen_;  // DiskFull's fills, by node
  Random net_rng_, client_rng_, nemesis_rng_;
  Random clock_rng_;
  bool clock_faults_;
  Random coord_rng_;
  Random split_rng_;
  Random merge_rng_;
  const int64_t merge_timeout_ms_;  // drawn per run: 0.8-3 s
  // (node, region): since when the node is seen leading the region frozen (DriveMerges).
  std::map<std::pair<int, uint64_t>, int64_t> merge_frozen_since_;
  Random idle_rng_;
  bool phase_idle_ = true;  // Idle(): the first phase is an active one
  int64_t phase_end_ = 0;
  uint64_t next_region_id_ = 1000;  // ids of the regions splits make
  StoreCluster cluster_;
  RegisterChecker checker_;
  TsoChecker tso_;
  std::map<uint64_t, uint64_t> tso_pending_;  // timestamp calls waiting: call -> node
  uint64_t next_tso_caller_ = 0;
  bool tso_live_ = false;  // a call made after healing got a timestamp
  int64_t heal_ms_ = -1;
  std::set<uint64_t> ids_;  // every id handed out
  std::map<uint64_t, Op> ops_;
  uint64_t next_op_ = 0;
  bool faults_on_ = true;
  bool live_ = false;
  bool closing_ = false;
  std::set<uint64_t> removed_;
  std::set<std::string> unavailable_;  // values whose write was reported Unavailable  // removed
                                       // from region 1 at some point: never added again

 public:
  uint64_t trace_hash() const { return cluster_.trace_hash(); }
  uint64_t events() const { return cluster_.events(); }
  const std::deque<std::string>& tail() const { return cluster_.tail(); }
};

}  // namespace

StoreSimResult RunStoreSimulation(const StoreSimOptions& options) {
  static const bool quiet = [] { return SetLogLevels("off").ok(); }();
  (void)quiet;
  StoreSimResult result;
  result.options = options;
  const std::string dir = (std::filesystem::temp_directory_path() /
                           fmt::format("store_sim.{}.{}", getpid(), options.seed))
                              .string();
  std::filesystem::create_directories(dir);
  {
    Run run(options, &result, dir);
    run.Go();
    run.Finish();
    result.trace_hash = run.trace_hash();
    result.stats.events = run.events();
    result.tail.assign(run.tail().begin(), run.tail().end());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

std::string StoreSimResult::RerunCommand() const {
  return fmt::format(
      "{} --seed {} --nodes {} --fault-ms {}{}{}{}{}{}{} --verbose", options.binary, options.seed,
      options.nodes, options.fault_ms, options.unsafe_local_reads ? " --unsafe-local-reads" : "",
      options.clock_faults < 0 ? "" : fmt::format(" --clock-faults {}", options.clock_faults),
      options.meta_transfers ? " --meta-transfers" : "", options.splits ? " --splits" : "",
      options.merges ? " --merges" : "", options.idle ? " --idle" : "");
}

std::string StoreSimResult::FailureReport() const {
  std::string out = fmt::format("seed {} ({} nodes) failed; rerun with: {}\n", options.seed,
                                options.nodes, RerunCommand());
  for (size_t i = 0; i < violations.size() && i < 5; ++i) {
    const Violation& v = violations[i];
    out += fmt::format("  {} at event {} (t={}ms): {}\n", v.check, v.event, v.time, v.detail);
  }
  out += fmt::format("  profile: {}\n  last events:\n", profile);
  for (const std::string& line : tail) out += "    " + line + "\n";
  return out;
}

}  // namespace micedb::sim
