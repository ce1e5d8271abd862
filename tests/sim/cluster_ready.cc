// Each node's Ready handling, split into events so that a crash can fall between the steps:
//   kReady: GetReady; install an incoming snapshot in storage; append entries; save the hard
//           state (all durable from here on);
//   kSend:  send the messages (only after the above is durable: paper Figure 2);
//   kApply: restore the state machine from the snapshot, apply committed entries (conf changes
//           through ApplyConfChange), serve reads, then Advance.
// A leader's Ready marked send_before_persist is usually (as in the store) handled the other
// way round, with a window in which a crash finds the messages sent and the entries lost:
//   kReady: GetReady; send the messages;
//   kPersist: persist as above; then kApply.
// Input that arrives between GetReady and Advance waits in the node's inbox.
#include <algorithm>

#include <fmt/format.h>

#include "tests/sim/cluster.h"
#include "tests/sim/digest.h"

namespace micedb::sim {

void Cluster::StartNode(SimNode& n) {
  raft::Config cfg;
  cfg.id = n.id;
  cfg.election_tick = profile_.election_tick;
  cfg.heartbeat_tick = profile_.heartbeat_tick;
  cfg.storage = &n.durable;
  Result<raft::Snapshot> snap = n.durable.GetSnapshot();
  if (!snap.ok()) {
    Violate("driver", fmt::format("n{}: GetSnapshot failed: {}", n.id, snap.status().ToString()));
    return;
  }
  // The state machine is volatile: it restarts from the durable snapshot, and the core
  // re-delivers every committed entry after it.
  cfg.applied = LogIndex(snap->metadata().index());
  cfg.max_size_per_msg = profile_.max_size_per_msg;
  cfg.max_inflight_msgs = profile_.max_inflight_msgs;
  cfg.max_inflight_bytes = profile_.max_inflight_bytes;
  cfg.pre_vote = profile_.pre_vote;
  cfg.check_quorum = profile_.check_quorum;
  cfg.read_only =
      profile_.lease_reads ? raft::ReadOnlyOption::kLeaseBased : raft::ReadOnlyOption::kSafe;
  cfg.async_leader_persist = profile_.async_leader_persist;
  cfg.lazy_commit = profile_.lazy_commit;
  cfg.random_seed = HashCombine(rng_.Next64(), n.id.value());
  Result<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::Create(cfg);
  if (!raw.ok()) {
    Violate("driver",
            fmt::format("n{}: RawNode::Create failed: {}", n.id, raw.status().ToString()));
    return;
  }
  n.raw = std::move(raw).value();
  if (Status s = n.kv.Restore(*snap); !s.ok()) {
    Violate("driver", fmt::format("n{}: bad durable snapshot: {}", n.id, s.ToString()));
  }
  n.conf = n.durable.GetInitialState()->conf_state;
  applies_.ObserveRestore(n.id, n.kv.applied(), n.kv.digest());
  n.role = raft::Role::kFollower;
  n.term = Term(n.durable.hard_state().term());
  n.leader = NodeId();
  // Clocks run at slightly different rates on different nodes, except where leases need them
  // not to.
  n.tick_interval = profile_.lease_reads ? 10 : static_cast<int>(rng_.Range(9, 11));
  Schedule(rng_.Range(1, n.tick_interval), Event{.kind = EventKind::kTick,
                                                 .node = static_cast<int>(n.id.value() - 1),
                                                 .incarnation = n.incarnation});
  touched_ |= 1u << (n.id.value() - 1);
  MaybeScheduleReady(n);
  Note(fmt::format("n{} starts (applied {}, commit {})", n.id, cfg.applied,
                   n.durable.hard_state().commit()));
}

void Cluster::CrashNode(SimNode& n, std::string_view why) {
  if (!n.up()) return;
  FailVolatileRequests(n);
  n.raw.reset();
  n.ready.reset();
  n.ready_scheduled = false;
  n.crash_at_send = SimNode::CrashPoint::kNone;
  n.crash_armed = false;
  n.inbox.clear();
  n.kv = KvStateMachine();
  n.role = raft::Role::kFollower;
  ++n.incarnation;
  ++stats_.crashes;
  Note(fmt::format("n{} crashes ({})", n.id, why));
}

bool Cluster::Input(SimNode& n, std::function<void()> fn) {
  if (!n.up()) return false;
  touched_ |= 1u << (n.id.value() - 1);
  if (n.busy()) {
    n.inbox.push_back(std::move(fn));
    return true;
  }
  fn();
  AfterInput(n);
  return true;
}

void Cluster::AfterInput(SimNode& n) {
  TakeDroppedReads(n);
  MaybeScheduleReady(n);
}

void Cluster::MaybeScheduleReady(SimNode& n) {
  if (!n.up() || n.busy() || n.ready_scheduled || !n.raw->HasReady()) return;
  n.ready_scheduled = true;
  // A short wait lets several inputs share one Ready, as a real event loop would.
  Schedule(rng_.Range(0, 2), Event{.kind = EventKind::kReady,
                                   .node = static_cast<int>(n.id.value() - 1),
                                   .incarnation = n.incarnation});
}

void Cluster::OnTick(const Event& ev) {
  SimNode& n = *nodes_[ev.node];
  if (!n.up() || n.incarnation != ev.incarnation) return;  // this clock died with its node
  Input(n, [&n] { n.raw->Tick(); });
  Schedule(n.tick_interval,
           Event{.kind = EventKind::kTick, .node = ev.node, .incarnation = ev.incarnation});
}

void Cluster::OnReady(SimNode& n) {
  n.ready_scheduled = false;
  if (!n.raw->HasReady()) return;
  n.ready = n.raw->GetReady();
  // Mostly send first, as the store does; sometimes not, so both orders stay covered.
  if (n.ready->send_before_persist && !rng_.OneIn(4)) {
    n.crash_armed =
        n.crash_at_send == SimNode::CrashPoint::kLeaderAppend && !n.ready->entries.empty();
    for (const raft::Message& m : n.ready->messages) SendMessage(m, n.incarnation);
    n.ready->messages.clear();
    Schedule(rng_.Range(0, 1), Event{.kind = EventKind::kPersist,
                                     .node = static_cast<int>(n.id.value() - 1),
                                     .incarnation = n.incarnation});
    return;
  }
  const uint64_t old_commit = n.durable.hard_state().commit();
  bool wrote = Persist(n);
  const bool leader = n.raw->GetStatus().role == raft::Role::kLeader;
  n.crash_armed =
      leader &&
      ((n.crash_at_send == SimNode::CrashPoint::kLeaderAppend && !n.ready->entries.empty()) ||
       (n.crash_at_send == SimNode::CrashPoint::kLeaderCommit &&
        n.durable.hard_state().commit() > old_commit));
  if (wrote || n.crash_armed) {
    // Leave a window in which a crash finds the Ready durable but unsent.
    Schedule(rng_.Range(0, 1), Event{.kind = EventKind::kSend,
                                     .node = static_cast<int>(n.id.value() - 1),
                                     .incarnation = n.incarnation});
  } else {
    SendReadyMessages(n);
  }
}

bool Cluster::Persist(SimNode& n) {
  const raft::Ready& rd = *n.ready;
  const raft::HardState old_hs = n.durable.hard_state();
  bool wrote = false;
  if (rd.snapshot.has_value()) {
    const raft::SnapshotMetadata& md = rd.snapshot->metadata();
    if (Status s = n.durable.ApplySnapshot(*rd.snapshot); !s.ok()) {
      Violate("driver", fmt::format("n{}: cannot install snapshot at index {}: {}", n.id,
                                    md.index(), s.ToString()));
    }
    LogIndex idx(md.index());
    logs_.ObserveCommitted(
        n.id, idx, Term(md.term()),
        Term(std::max(old_hs.term(),
                      rd.hard_state.has_value() ? rd.hard_state->term() : old_hs.term())));
    n.commit_checked = std::max(n.commit_checked, idx);
    Note(fmt::format("n{} persists snapshot (index {}, term {})", n.id, md.index(), md.term()));
    wrote = true;
  }
  if (!rd.entries.empty()) {
    PersistEntries(n, rd.entries);
    wrote = true;
    if (profile_.async_leader_persist) {
      // Told later, as the store's sync thread tells the raft loop: meanwhile the node goes
      // on, and may lose or regain leadership or have the entries replaced.
      auto mark = std::make_shared<raft::Message>();
      mark->set_index(rd.entries.back().index());
      mark->set_log_term(rd.entries.back().term());
      Schedule(rng_.Range(0, 4), Event{.kind = EventKind::kPersistReport,
                                       .node = static_cast<int>(n.id.value() - 1),
                                       .incarnation = n.incarnation,
                                       .msg = std::move(mark)});
    }
  }
  if (rd.hard_state.has_value()) {
    const raft::HardState& hs = *rd.hard_state;
    if (hs.term() < old_hs.term()) {
      Violate("durable-state",
              fmt::format("n{}: term goes back from {} to {}", n.id, old_hs.term(), hs.term()));
    } else if (hs.term() == old_hs.term() && old_hs.vote() != 0 && hs.vote() != old_hs.vote()) {
      Violate("durable-state", fmt::format("n{}: votes for {} and then {} in term {}", n.id,
                                           old_hs.vote(), hs.vote(), hs.term()));
    }
    if (hs.commit() < old_hs.commit()) {
      Violate("durable-state", fmt::format("n{}: commit goes back from {} to {}", n.id,
                                           old_hs.commit(), hs.commit()));
    }
    n.durable.SetHardState(hs);
    wrote = true;
  }
  CheckCommitted(n);
  CheckLeaderLog(n);
  return wrote;
}

void Cluster::PersistEntries(SimNode& n, const std::vector<raft::Entry>& entries) {
  const LogIndex commit(n.durable.hard_state().commit());
  std::optional<Term> prev;  // term of the entry before the current one
  for (const raft::Entry& e : entries) {
    const LogIndex i(e.index());
    const Term t(e.term());
    if (i < n.durable.FirstIndex()) continue;  // covered by the snapshot; Append skips it
    if (!prev.has_value()) {
      Result<Term> p = n.durable.TermAt(i - 1);
      if (!p.ok()) {
        Violate("driver", fmt::format("n{}: Ready entries start at index {}, after a gap (last "
                                      "index {})",
                                      n.id, i, n.durable.LastIndex()));
        return;
      }
      prev = *p;
    }
    if (i <= n.durable.LastIndex()) {
      logs_.ObserveOverwrite(n.id, i, n.durable.TermAt(i).value(), t, commit);
    }
    logs_.ObserveAppend(n.id, i, t, *prev, EntryContentHash(e));
    prev = t;
  }
  if (Status s = n.durable.Append(entries); !s.ok()) {
    Violate("driver", fmt::format("n{}: cannot append Ready entries: {}", n.id, s.ToString()));
  }
}

// Committed entries never change: every index the node's durable commit covers is reported
// with the term the node holds there.
void Cluster::CheckCommitted(SimNode& n) {
  const LogIndex commit(n.durable.hard_state().commit());
  const Term term(n.durable.hard_state().term());
  const LogIndex upto = std::min(commit, n.durable.LastIndex());
  for (LogIndex i = std::max(n.commit_checked + 1, n.durable.FirstIndex()); i <= upto; ++i) {
    logs_.ObserveCommitted(n.id, i, n.durable.TermAt(i).value(), term);
  }
  n.commit_checked = std::max(n.commit_checked, upto);
}

// Leader completeness: once a new leader's first entry of its term (its no-op) is durable,
// its durable log is its whole log up to there; it must hold every entry committed earlier.
void Cluster::CheckLeaderLog(SimNode& n) {
  raft::NodeStatus st = n.raw->GetStatus();
  if (st.role != raft::Role::kLeader || st.term <= n.leader_checked) return;
  if (n.durable.TermAt(n.durable.LastIndex()).value_or(Term()) != st.term) return;
  n.leader_checked = st.term;
  const raft::MemoryStorage& log = n.durable;
  logs_.CheckLeaderLog(n.id, st.term, log.FirstIndex(), log.LastIndex(),
                       [&log](LogIndex i) -> std::optional<Term> {
                         Result<Term> t = log.TermAt(i);
                         if (!t.ok()) return std::nullopt;
                         return *t;
                       });
}

void Cluster::OnPersist(SimNode& n) {
  if (n.crash_armed) {
    CrashNode(n, "after sending, before persisting");
    return;
  }
  Persist(n);
  SendReadyMessages(n);  // nothing left to send: applies, or advances
}

void Cluster::OnSend(SimNode& n) {
  if (n.crash_armed) {
    CrashNode(n, "after persisting, before sending");
    return;
  }
  SendReadyMessages(n);
}

void Cluster::SendReadyMessages(SimNode& n) {
  const raft::Ready& rd = *n.ready;
  for (const raft::Message& m : rd.messages) SendMessage(m, n.incarnation);
  bool to_apply =
      rd.snapshot.has_value() || !rd.committed_entries.empty() || !rd.read_states.empty();
  if (to_apply) {
    Schedule(rng_.Range(0, 1), Event{.kind = EventKind::kApply,
                                     .node = static_cast<int>(n.id.value() - 1),
                                     .incarnation = n.incarnation});
  } else {
    FinishReady(n);
  }
}

void Cluster::SendMessage(const raft::Message& m, uint64_t sender_incarnation) {
  ++stats_.messages;
  const int from = static_cast<int>(m.from()) - 1;
  if (m.to() == 0 || m.to() > nodes_.size() || from < 0 || from >= options_.nodes) {
    Violate("driver", fmt::format("message {} from {} to unknown node {}",
                                  raft::MessageType_Name(m.type()), m.from(), m.to()));
    return;
  }
  auto deliver = [&](int64_t delay) {
    Schedule(delay, Event{.kind = EventKind::kDeliver,
                          .node = static_cast<int>(m.to()) - 1,
                          .incarnation = sender_incarnation,
                          .msg = std::make_shared<const raft::Message>(m)});
  };
  auto latency = [&] {
    int64_t d = rng_.Range(1, 3);
    if (faults_on_ && rng_.Bernoulli(profile_.long_delay))
      d += rng_.Range(5, profile_.long_delay_max);
    return d;
  };
  if (faults_on_ && rng_.Bernoulli(profile_.drop)) {
    ++stats_.dropped;
    if (tracing_) {
      Note(fmt::format("lost: {} {}->{} idx={}", raft::MessageType_Name(m.type()), m.from(), m.to(),
                       m.index()));
    }
    if (m.type() == raft::MSG_SNAP) {
      Schedule(latency(), Event{.kind = EventKind::kSnapReport,
                                .node = from,
                                .incarnation = sender_incarnation,
                                .peer = NodeId(m.to()),
                                .ok = false});
    }
    return;
  }
  deliver(latency());
  if (faults_on_ && rng_.Bernoulli(profile_.duplicate)) deliver(latency());
}

void Cluster::OnDeliver(const Event& ev) {
  const raft::Message& m = *ev.msg;
  SimNode& to = *nodes_[ev.node];
  const int from = static_cast<int>(m.from()) - 1;
  const bool reachable = net_.Connected(NodeId(m.from()), NodeId(m.to())) && to.up();
  if (m.type() == raft::MSG_SNAP) {
    // The transport reports a snapshot's fate to its sender (if still the same incarnation).
    Schedule(rng_.Range(1, 3), Event{.kind = EventKind::kSnapReport,
                                     .node = from,
                                     .incarnation = ev.incarnation,
                                     .peer = NodeId(m.to()),
                                     .ok = reachable});
  }
  if (!reachable) {
    ++stats_.dropped;
    Note(to.up() ? "link cut: dropped" : "receiver down: dropped");
    if (rng_.OneIn(4)) {
      Schedule(rng_.Range(1, 5), Event{.kind = EventKind::kUnreachable,
                                       .node = from,
                                       .incarnation = ev.incarnation,
                                       .peer = NodeId(m.to())});
    }
    return;
  }
  std::shared_ptr<const raft::Message> msg = ev.msg;
  Input(to, [this, &to, msg] {
    if (Status s = to.raw->Step(*msg); !s.ok()) Note(fmt::format("step: {}", s.ToString()));
  });
}

void Cluster::OnApply(SimNode& n) {
  const raft::Ready& rd = *n.ready;
  if (rd.snapshot.has_value()) {
    const raft::SnapshotMetadata& md = rd.snapshot->metadata();
    if (Status s = n.kv.Restore(*rd.snapshot); !s.ok()) {
      Violate("driver", fmt::format("n{}: cannot restore snapshot: {}", n.id, s.ToString()));
    }
    n.conf = md.conf_state();
    applies_.ObserveRestore(n.id, LogIndex(md.index()), n.kv.digest());
    // Proposals the snapshot jumped over: their outcome is unknown to the client.
    n.proposals.erase(n.proposals.begin(), n.proposals.upper_bound(LogIndex(md.index())));
    ++stats_.snapshots_installed;
  }
  for (const raft::Entry& e : rd.committed_entries) {
    applies_.ObserveApply(n.id, LogIndex(e.index()), Term(e.term()), EntryContentHash(e));
    if (LogIndex(e.index()) != n.kv.applied() + 1) continue;  // reported above
    n.kv.Apply(e);
    if (e.type() == raft::ENTRY_CONF_CHANGE) {
      raft::ConfChange cc;
      if (!cc.ParseFromString(e.data())) {
        Violate("driver", fmt::format("n{}: conf change entry {} does not parse", n.id, e.index()));
        continue;
      }
      n.conf = n.raw->ApplyConfChange(cc);
      ++stats_.conf_changes_applied;
      Note(fmt::format("n{} applies {} {} at {}: voters=[{}] learners=[{}]", n.id,
                       raft::ConfChangeType_Name(cc.type()), cc.node_id(), e.index(),
                       fmt::join(n.conf.voters(), ","), fmt::join(n.conf.learners(), ",")));
    }
    ResolveProposals(n, e);
  }
  TakeReadStates(n, rd.read_states);
  ServeReads(n);
  FinishReady(n);
}

void Cluster::FinishReady(SimNode& n) {
  n.raw->Advance(*n.ready);
  n.ready.reset();
  while (!n.inbox.empty() && n.up() && !n.busy()) {
    std::function<void()> fn = std::move(n.inbox.front());
    n.inbox.pop_front();
    fn();
  }
  AfterInput(n);
}

}  // namespace micedb::sim
