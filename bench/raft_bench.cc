// Throughput of the Raft core alone: a 3-node group in one process, no I/O, proposals of
// 100 bytes batched 64 at a time. Every node does its full share of the Ready contract
// (append to a MemoryStorage, "send" by stepping the peer, apply by counting), so the CPU time
// measured is the core plus the cheapest possible application.
//
// Counters: entries_per_s — entries committed (and applied on every replica) per second of
// CPU; cpu_per_entry_replica — CPU time per entry per replica (target: under 1 µs).
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace micedb::raft {
namespace {

class Group {
 public:
  explicit Group(int n) {
    ConfState cs;
    for (int i = 1; i <= n; ++i) {
      cs.add_voters(i);
    }
    for (int i = 1; i <= n; ++i) {
      auto& node = nodes_.emplace_back();
      node.storage = std::make_unique<MemoryStorage>();
      node.storage->SetConfState(cs);
      Config cfg;
      cfg.id = NodeId(i);
      cfg.storage = node.storage.get();
      cfg.random_seed = 1;
      node.raw = std::move(RawNode::Create(cfg)).value();
    }
    if (!nodes_[0].raw->Campaign().ok()) {
      std::abort();
    }
    Run();
  }

  RawNode& leader() { return *nodes_[0].raw; }

  // Drives every node until nothing is left to persist, send or apply.
  void Run() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (size_t k = 0; k < nodes_.size(); ++k) {
        Node& n = nodes_[k];
        while (n.raw->HasReady()) {
          busy = true;
          Ready rd = n.raw->GetReady();
          if (!rd.entries.empty() && !n.storage->Append(std::move(rd.entries)).ok()) {
            std::abort();
          }
          if (rd.hard_state) {
            n.storage->SetHardState(*rd.hard_state);
          }
          for (Message& m : rd.messages) {
            inflight_.push_back(std::move(m));
          }
          for (const Entry& e : rd.committed_entries) {
            if (!e.data().empty()) {
              ++n.applied_entries;
            }
          }
          LogIndex applied = rd.committed_entries.empty()
                                 ? LogIndex(0)
                                 : LogIndex(rd.committed_entries.back().index());
          n.raw->Advance(rd);
          // Keep memory flat: compact what every node has applied, now and then.
          if (applied.value() >= n.compacted.value() + 4096) {
            if (!n.storage->Compact(applied).ok()) {
              std::abort();
            }
            n.compacted = applied;
          }
        }
      }
      while (!inflight_.empty()) {
        busy = true;
        Message m = std::move(inflight_.front());
        inflight_.pop_front();
        if (!nodes_[m.to() - 1].raw->Step(std::move(m)).ok()) {
          std::abort();
        }
      }
    }
  }

  uint64_t MinApplied() const {
    uint64_t v = UINT64_MAX;
    for (const Node& n : nodes_) {
      v = std::min(v, n.applied_entries);
    }
    return v;
  }
  size_t size() const { return nodes_.size(); }

 private:
  struct Node {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;
    uint64_t applied_entries = 0;
    LogIndex compacted;
  };
  std::vector<Node> nodes_;
  std::deque<Message> inflight_;
};

void BM_RaftCommit(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  const size_t entry_bytes = static_cast<size_t>(state.range(1));
  Group g(3);
  const std::string payload(entry_bytes, 'p');
  for (auto _ : state) {
    std::vector<std::string> props(batch, payload);
    if (!g.leader().ProposeBatch(std::move(props)).ok()) {
      std::abort();
    }
    g.Run();
  }
  uint64_t entries = g.MinApplied();
  if (entries != batch * state.iterations()) {
    state.SkipWithError("not every entry committed");
  }
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(entries), benchmark::Counter::kIsRate);
  // CPU seconds per entry per replica (shown with an SI prefix: "390n" is 390 ns).
  state.counters["cpu_per_entry_replica"] =
      benchmark::Counter(static_cast<double>(entries * g.size()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<int64_t>(entries));
}

BENCHMARK(BM_RaftCommit)
    ->ArgNames({"batch", "bytes"})
    ->Args({64, 100})
    ->Args({1, 100})
    ->Args({256, 100});

}  // namespace
}  // namespace micedb::raft

BENCHMARK_MAIN();
