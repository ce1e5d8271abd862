// Clients: writes proposed through the log (put, compare-and-set, get) and ReadIndex reads,
// issued throughout the fault phase. A write is acknowledged when its proposer applies the
// entry at the (term, index) ProposeWithIndex returned; a read is served once its node has
// applied up to the read's index. ReadChecker judges the reads against the acknowledgements.
#include <fmt/format.h>

#include "tests/sim/cluster.h"

namespace micedb::sim {

void Cluster::OnClient() {
  if (!faults_on_) return;
  Schedule(rng_.Range(1, profile_.client_gap_max), Event{.kind = EventKind::kClient});
  if (static_cast<int>(rng_.Uniform(100)) < profile_.read_percent) {
    BeginRead();
  } else {
    ProposeWrite();
  }
}

void Cluster::ProposeWrite() {
  // Clients usually find the leader; sometimes they ask whoever they reach, and are refused.
  SimNode* target = rng_.OneIn(6) ? RandomNode(true) : Leader();
  if (target == nullptr) return;
  KvOp op;
  op.id = next_op_id_++;
  op.key = fmt::format("k{}", rng_.Uniform(static_cast<uint64_t>(profile_.keys)));
  op.value = fmt::format("v{}", op.id);
  switch (rng_.Uniform(10)) {
    case 0:
      op.kind = KvOpKind::kGet;
      break;
    case 1:
    case 2:
    case 3:
      op.kind = KvOpKind::kCas;
      op.expect = rng_.OneIn(3) ? "" : fmt::format("v{}", rng_.Range(1, op.id));
      break;
    default:
      op.kind = KvOpKind::kPut;
      break;
  }
  Input(*target, [this, target, data = EncodeKvOp(op), id = op.id] {
    auto r = target->raw->ProposeWithIndex(data);
    if (!r.ok()) {
      Note(fmt::format("op {} refused by n{}: {}", id, target->id, r.status().ToString()));
      return;
    }
    ++stats_.proposals;
    target->proposals.emplace(r->second, PendingProposal{id, r->first});
    Note(fmt::format("op {} proposed at n{} (term {}, index {})", id, target->id, r->first,
                     r->second));
  });
}

void Cluster::BeginRead() {
  SimNode* n = RandomNode(true);
  if (n == nullptr) return;
  const uint64_t id = reads_.BeginRead();
  if (options_.unsafe_local_reads) {
    reads_.ObserveServed(id, n->id, n->kv.applied(), n->kv.applied());
    return;
  }
  std::string ctx = fmt::format("read-{}", id);
  n->read_ctx.emplace(ctx, id);
  Input(*n, [n, ctx] { n->raw->ReadIndex(ctx); });
  Note(fmt::format("read {} at n{}", id, n->id));
}

void Cluster::ResolveProposals(SimNode& n, const raft::Entry& e) {
  const LogIndex index(e.index());
  auto it = n.proposals.begin();
  while (it != n.proposals.end() && it->first <= index) {
    if (it->first == index && it->second.term == Term(e.term())) {
      reads_.ObserveAck(index);
      ++stats_.acked;
    } else {
      ++stats_.lost;
    }
    it = n.proposals.erase(it);
  }
}

void Cluster::TakeReadStates(SimNode& n, const std::vector<raft::ReadState>& states) {
  for (const raft::ReadState& rs : states) {
    auto it = n.read_ctx.find(rs.request_ctx);
    if (it == n.read_ctx.end()) continue;  // e.g. a duplicated response
    n.awaiting_reads.push_back({it->second, rs.index});
    n.read_ctx.erase(it);
  }
}

void Cluster::ServeReads(SimNode& n) {
  auto& w = n.awaiting_reads;
  for (size_t i = 0; i < w.size();) {
    if (w[i].index <= n.kv.applied()) {
      reads_.ObserveServed(w[i].read_id, n.id, w[i].index, n.kv.applied());
      w[i] = w.back();
      w.pop_back();
    } else {
      ++i;
    }
  }
}

void Cluster::TakeDroppedReads(SimNode& n) {
  for (const std::string& ctx : n.raw->TakeDroppedReads()) {
    auto it = n.read_ctx.find(ctx);
    if (it == n.read_ctx.end()) continue;
    reads_.ObserveFailed(it->second);
    n.read_ctx.erase(it);
  }
}

// A crash loses the node's clients' pending requests: their outcome is unknown.
void Cluster::FailVolatileRequests(SimNode& n) {
  for (const auto& [ctx, id] : n.read_ctx) reads_.ObserveFailed(id);
  for (const AwaitingRead& r : n.awaiting_reads) reads_.ObserveFailed(r.read_id);
  n.read_ctx.clear();
  n.awaiting_reads.clear();
  n.proposals.clear();
}

}  // namespace micedb::sim
