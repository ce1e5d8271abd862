#include "tests/sim/cluster.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tests/sim/digest.h"

namespace micedb::sim {
namespace {

// Everything in a run derives from the seed; the node count is mixed in so that a 3-node and
// a 5-node run of the same seed differ.
uint64_t RunSeed(const SimOptions& o) {
  return HashCombine(o.seed, static_cast<uint64_t>(o.nodes));
}

std::string_view ShortType(raft::MessageType t) {
  std::string_view name = raft::MessageType_Name(t);
  return name.substr(name.find('_') + 1);  // "MSG_APP" -> "APP"
}

std::string_view RoleLetter(raft::Role r) {
  switch (r) {
    case raft::Role::kLeader:
      return "L";
    case raft::Role::kCandidate:
      return "C";
    case raft::Role::kPreCandidate:
      return "P";
    case raft::Role::kFollower:
      break;
  }
  return "F";
}

}  // namespace

Cluster::Cluster(const SimOptions& options)
    : options_(options),
      rng_(RunSeed(options)),
      profile_([&] {
        FaultProfile p = DrawProfile(&rng_, options.profile);
        p.async_leader_persist = (HashCombine(RunSeed(options), 0x5eed) & 1) != 0;
        p.lazy_commit = (HashCombine(RunSeed(options), 0x1a2c) & 1) != 0;
        return p;
      }()),
      net_(options.nodes),
      tracing_(options.verbose || options.trace_tail > 0) {
  for (int i = 1; i <= options_.nodes; ++i) nodes_.push_back(std::make_unique<SimNode>(NodeId(i)));
}

void Cluster::Schedule(int64_t delay, Event ev) {
  queue_.Push(queue_.now() + delay, std::move(ev));
}

void Cluster::Violate(std::string check, std::string detail) {
  violations_.push_back({std::move(check), std::move(detail)});
}

void Cluster::Note(std::string text) {
  if (!tracing_) return;
  if (!note_.empty()) note_ += "; ";
  note_ += text;
}

SimNode* Cluster::Leader() {
  SimNode* best = nullptr;
  for (auto& n : nodes_) {
    if (n->up() && n->role == raft::Role::kLeader && (best == nullptr || n->term > best->term)) {
      best = n.get();
    }
  }
  return best;
}

SimResult Cluster::Run() {
  raft::ConfState initial;
  for (auto& n : nodes_) initial.add_voters(n->id.value());
  for (auto& n : nodes_) {
    n->durable.SetConfState(initial);
    StartNode(*n);
  }
  Schedule(rng_.Range(1, profile_.nemesis_gap_max), Event{.kind = EventKind::kNemesis});
  Schedule(rng_.Range(1, profile_.client_gap_max), Event{.kind = EventKind::kClient});

  bool live = false;
  while (!queue_.empty()) {
    touched_ = 0;
    note_.clear();
    if (faults_on_ && events_ >= options_.steps) BeginLiveness();
    Event ev = queue_.Pop();
    if (!faults_on_ && queue_.now() - faults_ended_at_ > options_.liveness_bound) {
      ReportLivenessFailure();
      break;
    }
    ++events_;
    size_t before = violations_.size();
    Dispatch(ev);
    AfterEvent(ev, before);
    if (!violations_.empty()) break;
    if (!faults_on_ && LivenessReached()) {
      live = true;
      stats_.liveness_time = queue_.now() - faults_ended_at_;
      break;
    }
  }
  if (violations_.empty()) CompareLogs();
  if (violations_.empty() && !live) Violate("liveness", "the event queue ran dry");

  SimResult r;
  r.options = options_;
  r.profile = profile_.Describe();
  r.trace_hash = trace_hash_;
  r.violations = violations_;
  for (auto& v : r.violations) {
    if (v.event == 0) {
      v.event = events_;
      v.time = queue_.now();
    }
  }
  stats_.events = events_;
  stats_.end_time = queue_.now();
  stats_.leader_terms = elections_.terms_with_leader();
  stats_.reads_served = reads_.served();
  stats_.committed = applies_.length().value();
  r.stats = stats_;
  // The ring holds the last trace_tail lines, oldest at trace_next_.
  for (size_t i = 0; i < trace_.size(); ++i) {
    r.trace.push_back(trace_[(trace_next_ + i) % trace_.size()]);
  }
  return r;
}

void Cluster::Dispatch(const Event& ev) {
  SimNode& n = *nodes_[ev.node];
  const bool current = n.up() && n.incarnation == ev.incarnation;
  const bool own_step = ev.kind == EventKind::kReady || ev.kind == EventKind::kSend ||
                        ev.kind == EventKind::kApply || ev.kind == EventKind::kPersist ||
                        ev.kind == EventKind::kPersistReport;
  if (current && own_step) touched_ |= 1u << ev.node;
  switch (ev.kind) {
    case EventKind::kTick:
      OnTick(ev);
      break;
    case EventKind::kDeliver:
      OnDeliver(ev);
      break;
    case EventKind::kReady:
      if (current) OnReady(n);
      break;
    case EventKind::kSend:
      if (current) OnSend(n);
      break;
    case EventKind::kApply:
      if (current) OnApply(n);
      break;
    case EventKind::kPersist:
      if (current) OnPersist(n);
      break;
    case EventKind::kPersistReport:
      if (current) {
        LogIndex index(ev.msg->index());
        Term term(ev.msg->log_term());
        Input(n, [&n, index, term] { n.raw->ReportPersisted(index, term); });
      }
      break;
    case EventKind::kSnapReport:
      if (current) {
        NodeId peer = ev.peer;
        auto status = ev.ok ? raft::SnapshotStatus::kFinish : raft::SnapshotStatus::kFailure;
        Input(n, [&n, peer, status] { n.raw->ReportSnapshot(peer, status); });
      }
      break;
    case EventKind::kUnreachable:
      if (current) {
        NodeId peer = ev.peer;
        Input(n, [&n, peer] { n.raw->ReportUnreachable(peer); });
      }
      break;
    case EventKind::kNemesis:
      OnNemesis();
      break;
    case EventKind::kClient:
      OnClient();
      break;
  }
}

void Cluster::AfterEvent(const Event& ev, size_t violations_before) {
  uint64_t h = HashCombine(trace_hash_, static_cast<uint64_t>(queue_.now()));
  h = HashCombine(h, static_cast<uint64_t>(ev.kind) << 8 | static_cast<uint64_t>(ev.node));
  if (ev.msg != nullptr) {
    const raft::Message& m = *ev.msg;
    h = HashCombine(h, static_cast<uint64_t>(m.type()) << 16 | m.from() << 8 | m.to());
    h = HashCombine(h, HashCombine(m.term(), m.index()));
    h = HashCombine(h, HashCombine(m.commit(), static_cast<uint64_t>(m.entries_size())));
  }
  // Election safety is checked on every node the event touched, and the node's role, term and
  // commit index go into the trace hash, so a run that diverges inside the core is noticed.
  for (auto& n : nodes_) {
    uint32_t bit = 1u << (n->id.value() - 1);
    if ((touched_ & bit) == 0 || !n->up()) continue;
    raft::NodeStatus st = n->raw->GetStatus();
    n->role = st.role;
    n->term = st.term;
    n->leader = st.leader;
    if (st.role == raft::Role::kLeader) elections_.ObserveLeader(n->id, st.term);
    h = HashCombine(h, static_cast<uint64_t>(st.role) << 8 | n->id.value());
    h = HashCombine(h, HashCombine(st.term.value(), st.commit.value()));
  }
  trace_hash_ = h;
  if (events_ % 512 == 0) CompareLogs();
  for (size_t i = violations_before; i < violations_.size(); ++i) {
    violations_[i].event = events_;
    violations_[i].time = queue_.now();
  }
  if (tracing_) RecordTrace(ev);
}

void Cluster::RecordTrace(const Event& ev) {
  static constexpr std::string_view kKinds[] = {
      "tick",           "deliver",     "ready",       "send",    "apply", "persist",
      "persist-report", "snap-report", "unreachable", "nemesis", "client"};
  static_assert(std::size(kKinds) == static_cast<size_t>(EventKind::kClient) + 1);
  std::string line =
      fmt::format("#{} t={} {}", events_, queue_.now(), kKinds[static_cast<size_t>(ev.kind)]);
  if (ev.kind != EventKind::kNemesis && ev.kind != EventKind::kClient) {
    line += fmt::format(" n{}", ev.node + 1);
  }
  if (ev.msg != nullptr) {
    const raft::Message& m = *ev.msg;
    line += fmt::format(" {} {}->{} term={} idx={} logterm={} commit={} ents={}{}",
                        ShortType(m.type()), m.from(), m.to(), m.term(), m.index(), m.log_term(),
                        m.commit(), m.entries_size(), m.reject() ? " reject" : "");
  }
  if (!note_.empty()) line += " | " + note_;
  std::string roles;
  for (auto& n : nodes_) {
    roles += n->up() ? fmt::format(" {}{}:{}", RoleLetter(n->role), n->id, n->term)
                     : fmt::format(" X{}", n->id);
  }
  line += " [" + roles.substr(1) + "]";
  if (options_.verbose) std::fputs((line + "\n").c_str(), stdout);
  if (options_.trace_tail == 0) return;
  if (trace_.size() < options_.trace_tail) {
    trace_.push_back(std::move(line));
  } else {
    trace_[trace_next_] = std::move(line);
    trace_next_ = (trace_next_ + 1) % trace_.size();
  }
}

// Log matching, checked the slow way: for every pair of durable logs, below the highest index
// where they agree on the term, they agree on every term. (Content is covered by LogChecker.)
void Cluster::CompareLogs() {
  for (size_t a = 0; a < nodes_.size(); ++a) {
    for (size_t b = a + 1; b < nodes_.size(); ++b) {
      const raft::MemoryStorage& x = nodes_[a]->durable;
      const raft::MemoryStorage& y = nodes_[b]->durable;
      LogIndex lo = std::max(x.FirstIndex(), y.FirstIndex());
      LogIndex hi = std::min(x.LastIndex(), y.LastIndex());
      LogIndex agree;
      for (LogIndex i = hi; i >= lo && i.value() > 0; --i) {
        if (x.TermAt(i).value() == y.TermAt(i).value()) {
          agree = i;
          break;
        }
      }
      for (LogIndex i = lo; i < agree; ++i) {
        Term tx = x.TermAt(i).value(), ty = y.TermAt(i).value();
        if (tx != ty) {
          Violate("log-matching",
                  fmt::format("nodes {} and {} agree on the term at index {} but hold terms {} "
                              "and {} at index {}",
                              nodes_[a]->id, nodes_[b]->id, agree, tx, ty, i));
          return;
        }
      }
    }
  }
}

void Cluster::BeginLiveness() {
  faults_on_ = false;
  faults_ended_at_ = queue_.now();
  net_.Heal();
  for (auto& n : nodes_) {
    n->crash_at_send = SimNode::CrashPoint::kNone;
    n->crash_armed = false;
    if (!n->up()) StartNode(*n);
  }
  Note("faults end: network healed, every node up");
}

// Liveness: once faults stop, some leader gets a fresh entry (the marker) committed and
// applied on every member of its configuration.
bool Cluster::LivenessReached() {
  SimNode* leader = Leader();
  if (marker_.has_value() && MarkerLost(leader)) {
    Note("marker entry lost; proposing again");
    marker_.reset();
  }
  if (!marker_.has_value()) {
    if (leader == nullptr || leader->busy()) return false;
    KvOp op;
    op.id = next_op_id_++;
    op.key = "marker";
    op.value = "done";
    auto r = leader->raw->ProposeWithIndex(EncodeKvOp(op));
    if (!r.ok()) return false;
    marker_ = Marker{leader->id, r->first, r->second};
    Note(
        fmt::format("marker proposed at n{} (term {}, index {})", leader->id, r->first, r->second));
    AfterInput(*leader);
    return false;
  }
  if (leader == nullptr) return false;
  auto applied_marker = [&](uint64_t id) {
    const SimNode& n = *nodes_[id - 1];
    return n.up() && n.kv.applied() >= marker_->index;
  };
  for (uint64_t id : leader->conf.voters()) {
    if (!applied_marker(id)) return false;
  }
  for (uint64_t id : leader->conf.learners()) {
    if (!applied_marker(id)) return false;
  }
  return true;
}

// The marker can no longer commit once the common sequence holds another entry at its index,
// or once a leader of a later term lacks it (leaders only append entries of their own term).
bool Cluster::MarkerLost(const SimNode* leader) const {
  if (applies_.length() >= marker_->index) return applies_.TermAt(marker_->index) != marker_->term;
  if (leader == nullptr || leader->term <= marker_->term) return false;
  Result<Term> t = leader->durable.TermAt(marker_->index);
  return !t.ok() || *t != marker_->term;
}

void Cluster::ReportLivenessFailure() {
  std::string state;
  for (auto& n : nodes_) {
    if (!n->up()) {
      state += fmt::format("\n  n{} down", n->id);
      continue;
    }
    raft::NodeStatus st = n->raw->GetStatus();
    state += fmt::format(
        "\n  n{} {} term={} leader={} commit={} applied={} last={} voters=[{}] learners=[{}]",
        n->id, raft::RoleName(st.role), st.term, st.leader, st.commit, n->kv.applied(),
        n->durable.LastIndex(), fmt::join(n->conf.voters(), ","),
        fmt::join(n->conf.learners(), ","));
    for (const auto& [id, pr] : st.progress) {
      state += fmt::format("\n    progress of n{}: match={} next={} state={} inflight={}{}", id,
                           pr.match, pr.next, raft::ProgressStateName(pr.state), pr.inflight,
                           pr.is_learner ? " learner" : "");
    }
  }
  Violate("liveness",
          fmt::format("{} time units after faults stopped, no leader has committed a new entry "
                      "on every member{}{}",
                      options_.liveness_bound,
                      marker_.has_value()
                          ? fmt::format(" (marker at n{} term {} index {})", marker_->proposer,
                                        marker_->term, marker_->index)
                          : " (no marker accepted)",
                      state));
}

}  // namespace micedb::sim
