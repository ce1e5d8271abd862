// TestCluster: a handful of RawNodes wired together in memory for the unit tests. It plays the
// application's part of the Ready contract (persist to a MemoryStorage, send, apply, Advance)
// and delivers messages only when asked, so a test controls every interleaving. Test-only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "raft/memory_storage.h"
#include "raft/raft.h"
#include "raft/raw_node.h"

namespace micedb::raft::testing {

inline NodeId N(uint64_t id) { return NodeId(id); }
inline LogIndex I(uint64_t i) { return LogIndex(i); }
inline Term T(uint64_t t) { return Term(t); }

inline ConfState MakeConfState(const std::vector<uint64_t>& voters,
                               const std::vector<uint64_t>& learners = {}) {
  ConfState cs;
  for (uint64_t v : voters) {
    cs.add_voters(v);
  }
  for (uint64_t l : learners) {
    cs.add_learners(l);
  }
  return cs;
}

inline Entry MakeEntry(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

struct TestNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  Config cfg;
  std::vector<Entry> applied;  // every committed entry applied, in order
  std::vector<ReadState> reads;
  LogIndex snapshot_applied;  // index of the last snapshot installed

  Raft& raft() { return node->raft_for_test(); }
};

class TestCluster {
 public:
  using ConfigFn = std::function<void(Config&)>;

  // Nodes 1..n are voters, n+1..n+learners are learners.
  explicit TestCluster(size_t n, ConfigFn tweak = nullptr, size_t learners = 0)
      : tweak_(std::move(tweak)) {
    std::vector<uint64_t> voters, ls;
    for (uint64_t i = 1; i <= n; ++i) {
      voters.push_back(i);
    }
    for (uint64_t i = n + 1; i <= n + learners; ++i) {
      ls.push_back(i);
    }
    ConfState cs = MakeConfState(voters, ls);
    for (uint64_t i = 1; i <= n + learners; ++i) {
      AddNode(N(i), cs);
    }
  }

  // Adds a node with the given bootstrap membership (empty for a node joining later).
  TestNode& AddNode(NodeId id, const ConfState& cs) {
    auto& tn = nodes_[id];
    tn.storage = std::make_unique<MemoryStorage>();
    tn.storage->SetConfState(cs);
    tn.cfg = DefaultConfig(id, tn.storage.get());
    auto r = RawNode::Create(tn.cfg);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    tn.node = std::move(r).value();
    return tn;
  }

  Config DefaultConfig(NodeId id, MemoryStorage* storage) {
    Config c;
    c.id = id;
    c.storage = storage;
    c.random_seed = 42;
    if (tweak_) {
      tweak_(c);
    }
    return c;
  }

  // Simulates a crash and restart: the node keeps only what is in its storage.
  void Restart(NodeId id) {
    auto& tn = nodes_.at(id);
    tn.cfg.applied = tn.applied.empty()
                         ? tn.snapshot_applied
                         : std::max(tn.snapshot_applied, LogIndex(tn.applied.back().index()));
    auto r = RawNode::Create(tn.cfg);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    tn.node = std::move(r).value();
  }

  // Replaces a node's durable state and restarts it from there.
  void SetLog(uint64_t id, const std::vector<Entry>& ents, uint64_t term, uint64_t vote = 0,
              uint64_t commit = 0) {
    auto& tn = nodes_.at(N(id));
    EXPECT_TRUE(tn.storage->Append(ents).ok());
    HardState hs;
    hs.set_term(term);
    hs.set_vote(vote);
    hs.set_commit(commit);
    tn.storage->SetHardState(hs);
    Restart(N(id));
  }

  TestNode& node(uint64_t id) { return nodes_.at(N(id)); }
  RawNode& raw(uint64_t id) { return *nodes_.at(N(id)).node; }
  Raft& raft(uint64_t id) { return nodes_.at(N(id)).raft(); }
  std::map<NodeId, TestNode>& nodes() { return nodes_; }

  // Cuts every link to and from id.
  void Isolate(uint64_t id) { isolated_.insert(N(id)); }
  void Heal() {
    isolated_.clear();
    cut_.clear();
    drop_types_.clear();
  }
  // Drops messages from `from` to `to` (one direction).
  void Cut(uint64_t from, uint64_t to) { cut_.insert({N(from), N(to)}); }
  void DropType(MessageType t) { drop_types_.insert(t); }
  // Acts like a transport that reports the fate of every MSG_SNAP (RawNode::ReportSnapshot).
  void AutoReportSnapshots() { auto_report_snapshots_ = true; }
  // Stops HandleReady from reporting persisted entries (async_leader_persist tests).
  void HoldPersistReports() { auto_report_persisted_ = false; }
  // The transport's report for a MSG_SNAP that was delivered (ok) or lost.
  void ReportSnapshotFate(const Message& m, bool ok) {
    if (m.type() != MSG_SNAP || !auto_report_snapshots_) {
      return;
    }
    auto it = nodes_.find(N(m.from()));
    if (it == nodes_.end()) {
      return;
    }
    it->second.node->ReportSnapshot(N(m.to()),
                                    ok ? SnapshotStatus::kFinish : SnapshotStatus::kFailure);
  }

  // Handles every pending Ready of one node; its messages join the in-flight queue.
  void HandleReady(NodeId id) {
    TestNode& tn = nodes_.at(id);
    while (tn.node->HasReady()) {
      Ready rd = tn.node->GetReady();
      if (rd.snapshot) {
        EXPECT_TRUE(tn.storage->ApplySnapshot(*rd.snapshot).ok());
        tn.snapshot_applied = LogIndex(rd.snapshot->metadata().index());
      }
      EXPECT_TRUE(tn.storage->Append(rd.entries).ok());
      if (rd.hard_state) {
        tn.storage->SetHardState(*rd.hard_state);
      }
      for (Message& m : rd.messages) {
        sent_count_[m.type()]++;
        sent_log_.push_back(m);
        if (Blocked(m)) {
          if (m.type() == MSG_SNAP && auto_report_snapshots_) {
            tn.node->ReportSnapshot(N(m.to()), SnapshotStatus::kFailure);
          }
          continue;
        }
        inflight_.push_back(std::move(m));
      }
      for (const Entry& e : rd.committed_entries) {
        if (e.type() == ENTRY_CONF_CHANGE) {
          ConfChange cc;
          EXPECT_TRUE(cc.ParseFromString(e.data()));
          tn.storage->SetConfState(tn.node->ApplyConfChange(cc));
        }
        tn.applied.push_back(e);
      }
      for (ReadState& rs : rd.read_states) {
        tn.reads.push_back(std::move(rs));
      }
      tn.node->Advance(rd);
      // With async_leader_persist the entries are durable here and now; tests that hold the
      // report back turn this off and call ReportPersisted themselves.
      if (auto_report_persisted_ && !rd.entries.empty()) {
        tn.node->ReportPersisted(LogIndex(rd.entries.back().index()),
                                 Term(rd.entries.back().term()));
      }
    }
  }

  void HandleAllReady() {
    for (auto& [id, tn] : nodes_) {
      HandleReady(id);
    }
  }

  // Delivers the messages in flight now (not those they cause). Returns how many.
  size_t DeliverOnce() {
    std::deque<Message> batch;
    batch.swap(inflight_);
    size_t n = 0;
    for (Message& m : batch) {
      if (Blocked(m)) {
        ReportSnapshotFate(m, false);
        continue;
      }
      ReportSnapshotFate(m, true);
      auto it = nodes_.find(N(m.to()));
      if (it == nodes_.end()) {
        continue;
      }
      EXPECT_TRUE(it->second.node->Step(m).ok());
      ++n;
    }
    return n;
  }

  // Runs until no node has anything left to do.
  void Stabilize(int max_rounds = 1000) {
    for (int i = 0; i < max_rounds; ++i) {
      HandleAllReady();
      if (inflight_.empty()) {
        return;
      }
      DeliverOnce();
    }
    ADD_FAILURE() << "cluster did not stabilize";
  }

  void TickAll(int n = 1) {
    for (int k = 0; k < n; ++k) {
      for (auto& [id, tn] : nodes_) {
        tn.node->Tick();
      }
    }
  }
  void Tick(uint64_t id, int n = 1) {
    for (int k = 0; k < n; ++k) {
      raw(id).Tick();
    }
  }

  // Makes id campaign and runs the election to completion (no pre-vote round is needed for
  // the outcome, but one happens when enabled).
  void Elect(uint64_t id) {
    HandleAllReady();
    EXPECT_TRUE(raw(id).Campaign().ok());
    Stabilize();
  }

  // Ticks everyone until a leader emerges (each tick followed by full stabilization).
  NodeId TickUntilLeader(int max_ticks = 200) {
    for (int t = 0; t < max_ticks; ++t) {
      TickAll();
      Stabilize();
      for (auto& [id, tn] : nodes_) {
        if (tn.raft().role() == Role::kLeader && !isolated_.count(id)) {
          return id;
        }
      }
    }
    return NodeId();
  }

  std::deque<Message>& inflight() { return inflight_; }
  size_t sent(MessageType t) const {
    auto it = sent_count_.find(t);
    return it == sent_count_.end() ? 0 : it->second;
  }
  void ResetSentCounts() {
    sent_count_.clear();
    sent_log_.clear();
  }
  // Every message sent so far (including blocked ones), in order.
  const std::vector<Message>& sent_log() const { return sent_log_; }
  size_t Rejections(uint64_t from) const {
    size_t n = 0;
    for (const Message& m : sent_log_) {
      n += m.type() == MSG_APP_RESP && m.reject() && m.from() == from;
    }
    return n;
  }

  // Data of the normal, non-empty entries node id applied, in order.
  std::vector<std::string> AppliedData(uint64_t id) {
    std::vector<std::string> out;
    for (const Entry& e : node(id).applied) {
      if (e.type() == ENTRY_NORMAL && !e.data().empty()) {
        out.push_back(e.data());
      }
    }
    return out;
  }

 private:
  bool Blocked(const Message& m) const {
    NodeId from(m.from()), to(m.to());
    return isolated_.count(from) || isolated_.count(to) || cut_.count({from, to}) ||
           drop_types_.count(m.type());
  }

  ConfigFn tweak_;
  std::map<NodeId, TestNode> nodes_;
  std::deque<Message> inflight_;
  std::set<NodeId> isolated_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::set<MessageType> drop_types_;
  bool auto_report_snapshots_ = false;
  bool auto_report_persisted_ = true;
  std::map<MessageType, size_t> sent_count_;
  std::vector<Message> sent_log_;
};

}  // namespace micedb::raft::testing

namespace micedb::raft::testing {

inline Message MakeMsg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

// One node on its own storage, driven by hand: feed it messages, read what it sends.
class SoloNode {
 public:
  SoloNode(uint64_t id, const std::vector<uint64_t>& voters,
           const std::function<void(Config&)>& tweak = nullptr, const std::vector<Entry>& log = {},
           const HardState& hs = HardState()) {
    storage_.SetConfState(MakeConfState(voters));
    EXPECT_TRUE(storage_.Append(log).ok());
    storage_.SetHardState(hs);
    cfg_.id = N(id);
    cfg_.storage = &storage_;
    cfg_.random_seed = 7;
    if (tweak) {
      tweak(cfg_);
    }
    auto r = RawNode::Create(cfg_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    node_ = std::move(r).value();
  }

  RawNode& node() { return *node_; }
  Raft& raft() { return node_->raft_for_test(); }
  MemoryStorage& storage() { return storage_; }

  // Handles all Ready output and returns the messages sent.
  std::vector<Message> Drain() {
    std::vector<Message> out;
    while (node_->HasReady()) {
      Ready rd = node_->GetReady();
      if (rd.snapshot) {
        EXPECT_TRUE(storage_.ApplySnapshot(*rd.snapshot).ok());
      }
      EXPECT_TRUE(storage_.Append(rd.entries).ok());
      if (rd.hard_state) {
        storage_.SetHardState(*rd.hard_state);
      }
      for (Message& m : rd.messages) {
        out.push_back(std::move(m));
      }
      for (ReadState& rs : rd.read_states) {
        reads_.push_back(std::move(rs));
      }
      for (const Entry& e : rd.committed_entries) {
        applied_.push_back(e);
      }
      node_->Advance(rd);
    }
    return out;
  }

  // Steps m and returns what the node sends in answer.
  std::vector<Message> Feed(const Message& m) {
    EXPECT_TRUE(node_->Step(m).ok());
    return Drain();
  }

  std::vector<ReadState>& reads() { return reads_; }
  std::vector<Entry>& applied() { return applied_; }

 private:
  MemoryStorage storage_;
  Config cfg_;
  std::unique_ptr<RawNode> node_;
  std::vector<ReadState> reads_;
  std::vector<Entry> applied_;
};

// The only message of type t in msgs (fails the test if not exactly one).
inline Message Only(const std::vector<Message>& msgs, MessageType t) {
  std::vector<Message> hits;
  for (const Message& m : msgs) {
    if (m.type() == t) {
      hits.push_back(m);
    }
  }
  EXPECT_EQ(hits.size(), 1u) << "messages of type " << MessageType_Name(t);
  return hits.empty() ? Message() : hits[0];
}

inline size_t CountType(const std::vector<Message>& msgs, MessageType t) {
  size_t n = 0;
  for (const Message& m : msgs) {
    n += m.type() == t;
  }
  return n;
}

}  // namespace micedb::raft::testing
