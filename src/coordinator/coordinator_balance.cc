// The coordinator's balancers (docs/sharding.md §3): leaders and replicas by count and size,
// and hot regions by the traffic their leaders report. Each acts through operators
// (coordinator_schedule.cc) and only while every store is up.
#include <algorithm>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "coordinator/coordinator.h"
#include "coordinator/schedule_steps.h"

namespace micedb::coordinator {

void Coordinator::BalanceLeaders(int64_t now) {
  if (options_.balance_leader_limit == 0) return;
  // Leaders per healthy store (a store that is not up takes none and is not counted).
  std::map<uint64_t, int64_t> leaders;
  for (const auto& [id, meta] : stores_) {
    if (StoreHealth(id, now) == Health::kUp) leaders[id] = 0;
  }
  if (leaders.size() < 2) return;
  for (const auto& [id, reg] : regions_) {
    if (auto it = leaders.find(reg.leader()); it != leaders.end()) ++it->second;
  }
  // Transfers under way count as done.
  for (const auto& [region, op] : operators_) {
    if (op.view.name() != "balance-leader") continue;
    auto reg = regions_.find(region);
    if (reg == regions_.end()) continue;
    if (auto from = leaders.find(reg->second.leader()); from != leaders.end()) --from->second;
    if (auto to = leaders.find(op.view.steps(0).store_id()); to != leaders.end()) ++to->second;
  }
  while (Running("balance-leader") < options_.balance_leader_limit &&
         operators_.size() < options_.max_operators) {
    auto [lo, hi] =
        std::minmax_element(leaders.begin(), leaders.end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; });
    if (hi->second - lo->second < 2) return;
    const uint64_t from = hi->first, to = lo->first;
    // A region led by the busiest store that has a caught-up voter on the idlest.
    uint64_t pick = 0;
    for (const auto& [id, reg] : regions_) {
      if (reg.leader() != from || operators_.count(id) || IsHot(id)) continue;
      auto live = region_live_.find(id);
      if (live == region_live_.end() || now - live->second.last_ms > kFreshReportMs) continue;
      const RegionHeartbeat& hb = live->second.last;
      if (hb.region().leader() != from) continue;
      if (!Has(hb.region().region().conf_state().voters(), to) || Has(hb.pending_peers(), to)) {
        continue;
      }
      pick = id;
      break;
    }
    if (pick == 0) return;
    StartOperator(pick, "balance-leader",
                  fmt::format("store {} leads {} regions, store {} leads {}", from, hi->second, to,
                              lo->second),
                  {Step(Operator::TRANSFER_LEADER, to)});
    --hi->second;
    ++lo->second;
  }
}

void Coordinator::BalanceRegions(int64_t now) {
  if (options_.balance_region_limit == 0) return;
  // A replica weighs its region's approximate size (its leader's last report) plus a fixed
  // kRegionWeight: stores of small regions balance by count, as before, and stores of big ones
  // by bytes (PD's region score, in spirit). Only in a healthy cluster: replacing lost replicas
  // comes first.
  constexpr int64_t kRegionWeight = int64_t{1} << 20;
  auto weight = [this](uint64_t region) {
    auto live = region_live_.find(region);
    const uint64_t size = live == region_live_.end() ? 0 : live->second.last.approximate_size();
    return kRegionWeight + static_cast<int64_t>(std::min<uint64_t>(size, uint64_t{1} << 40));
  };
  std::map<uint64_t, int64_t> score;
  for (const auto& [id, meta] : stores_) {
    const Health h = StoreHealth(id, now);
    if (h == Health::kDown || h == Health::kDisconnected) return;
    if (h != Health::kUp) continue;
    if (auto live = store_live_.find(id);
        live == store_live_.end() || live->second.stats.no_space()) {
      continue;
    }
    score[id] = 0;
  }
  if (score.size() < 2) return;
  for (const auto& [id, reg] : regions_) {
    const int64_t w = weight(id);
    for (uint64_t v : reg.region().conf_state().voters()) {
      if (auto it = score.find(v); it != score.end()) it->second += w;
    }
    for (uint64_t l : reg.region().conf_state().learners()) {
      if (auto it = score.find(l); it != score.end()) it->second += w;
    }
  }
  // What the operators under way will add and remove counts as done.
  std::map<uint64_t, int64_t> adding;
  for (const auto& [region, op] : operators_) {
    const int64_t w = weight(region);
    for (int i = static_cast<int>(op.view.step()); i < op.view.steps_size(); ++i) {
      const OperatorStep& st = op.view.steps(i);
      auto it = score.find(st.store_id());
      if (st.kind() == Operator::ADD_LEARNER) {
        ++adding[st.store_id()];
        if (it != score.end()) it->second += w;
      }
      if (st.kind() == Operator::REMOVE_PEER && it != score.end()) it->second -= w;
    }
  }
  while (Running("balance-region") < options_.balance_region_limit &&
         operators_.size() < options_.max_operators) {
    auto [lo, hi] =
        std::minmax_element(score.begin(), score.end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; });
    const int64_t gap = hi->second - lo->second;
    if (gap < 2 * kRegionWeight) return;  // with empty regions: a difference of two replicas
    const uint64_t from = hi->first, to = lo->first;
    if (adding[to] >= static_cast<int64_t>(options_.store_limit)) return;
    const std::string to_host = HostOf(to);
    // The heaviest region that closes at most half the gap (so that it does not swing the other
    // way and come back).
    uint64_t pick = 0;
    int64_t pick_weight = 0;
    for (const auto& [id, reg] : regions_) {
      if (operators_.count(id) || IsHot(id)) continue;  // BalanceHotRegions moves those
      const int64_t w = weight(id);
      if (w > gap / 2 || w <= pick_weight) continue;
      const auto& cs = reg.region().conf_state();
      if (!Has(cs.voters(), from) || Has(cs.voters(), to) || cs.learners_size() > 0) continue;
      auto live = region_live_.find(id);
      if (live == region_live_.end() || now - live->second.last_ms > kFreshReportMs) continue;
      if (live->second.last.pending_peers_size() > 0) continue;
      // Every voter healthy, and the new one on a host none of the others is on.
      bool ok = true;
      for (uint64_t v : cs.voters()) {
        ok &= StoreHealth(v, now) == Health::kUp;
        if (v != from && !to_host.empty()) ok &= HostOf(v) != to_host;
      }
      if (!ok) continue;
      pick = id;
      pick_weight = w;
    }
    if (pick == 0) return;
    StartOperator(pick, "balance-region",
                  fmt::format("store {} holds {} replicas ({} MiB), store {} holds {} ({} MiB)",
                              from, replica_counts_[from], (hi->second >> 20), to,
                              replica_counts_[to], (lo->second >> 20)),
                  {Step(Operator::ADD_LEARNER, to), Step(Operator::PROMOTE, to),
                   Step(Operator::REMOVE_PEER, from)});
    hi->second -= pick_weight;
    lo->second += pick_weight;
    ++adding[to];
  }
}

bool Coordinator::IsHot(uint64_t region) const {
  auto live = region_live_.find(region);
  return live != region_live_.end() && live->second.hot_degree >= options_.hot_region_reports;
}

void Coordinator::BalanceHotRegions(int64_t now) {
  if (options_.balance_hot_limit == 0) return;
  // Hot traffic per healthy store: at a leader, all of its hot regions' reads and writes (it
  // serves the reads and proposes the writes); at every replica, their writes (each applies
  // them). Only while every store is up, as the other balancers.
  std::map<uint64_t, uint64_t> lead, peer;
  for (const auto& [id, meta] : stores_) {
    const Health h = StoreHealth(id, now);
    if (h == Health::kDown || h == Health::kDisconnected) return;
    if (h != Health::kUp) continue;
    lead[id] = 0;
    peer[id] = 0;
  }
  if (lead.size() < 2) return;
  struct Hot {
    uint64_t id;
    uint64_t leader;
    uint64_t bytes;  // read and written, a second
    uint64_t written;
    const RegionHeartbeat* hb;
  };
  std::vector<Hot> hot;
  for (const auto& [id, reg] : regions_) {
    auto live = region_live_.find(id);
    if (live == region_live_.end() || now - live->second.last_ms > kFreshReportMs) continue;
    if (live->second.hot_degree < options_.hot_region_reports) continue;
    const RegionLive& l = live->second;
    hot.push_back({id, l.last.region().leader(), l.read_bps + l.write_bps, l.write_bps, &l.last});
    uint64_t leader = l.last.region().leader();
    std::set<uint64_t> voters(l.last.region().region().conf_state().voters().begin(),
                              l.last.region().region().conf_state().voters().end());
    // What an operator under way will change counts as done.
    if (auto op = operators_.find(id); op != operators_.end()) {
      for (int i = static_cast<int>(op->second.view.step()); i < op->second.view.steps_size();
           ++i) {
        const OperatorStep& st = op->second.view.steps(i);
        if (st.kind() == Operator::ADD_LEARNER) voters.insert(st.store_id());
        if (st.kind() == Operator::REMOVE_PEER) voters.erase(st.store_id());
        if (st.kind() == Operator::TRANSFER_LEADER) leader = st.store_id();
      }
    }
    if (auto it = lead.find(leader); it != lead.end()) it->second += l.read_bps + l.write_bps;
    for (uint64_t v : voters) {
      if (auto it = peer.find(v); it != peer.end()) it->second += l.write_bps;
    }
  }
  if (hot.empty()) return;
  // Hottest first: the move that closes the most of a gap comes first.
  std::sort(hot.begin(), hot.end(), [](const Hot& a, const Hot& b) { return a.bytes > b.bytes; });
  auto running = [this] { return Running("hot-leader") + Running("hot-peer"); };
  // A gap is worth closing when the busier store carries a quarter more than the other, and at
  // least one hot region's worth more.
  auto unbalanced = [this](uint64_t hi, uint64_t lo) {
    return hi >= lo + options_.hot_region_bytes && hi > lo + lo / 4;
  };
  // 1. Leaderships: from the store leading the most hot traffic, a hot region whose load at most
  // halves the gap to the member of it that leads the least.
  while (running() < options_.balance_hot_limit && operators_.size() < options_.max_operators) {
    const uint64_t from =
        std::max_element(lead.begin(), lead.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        })->first;
    uint64_t pick = 0, to = 0;
    std::string why;
    for (const Hot& r : hot) {
      if (r.leader != from || operators_.count(r.id)) continue;
      for (uint64_t v : r.hb->region().region().conf_state().voters()) {
        auto it = lead.find(v);
        if (v == from || it == lead.end() || Has(r.hb->pending_peers(), v)) continue;
        if (!unbalanced(lead[from], it->second) || 2 * r.bytes > lead[from] - it->second) {
          continue;
        }
        if (to == 0 || it->second < lead[to]) to = v;
      }
      if (to != 0) {
        pick = r.id;
        why = fmt::format("store {} leads {} KiB/s of hot regions, store {} {} KiB/s", from,
                          lead[from] >> 10, to, lead[to] >> 10);
        lead[from] -= r.bytes;
        lead[to] += r.bytes;
        break;
      }
    }
    if (pick == 0) break;
    StartOperator(pick, "hot-leader", why, {Step(Operator::TRANSFER_LEADER, to)});
  }
  // 2. Replicas, for writes: from the store applying the most hot writes to the one applying the
  // least, a hot region on the first and not on the second, whose writes at most halve the gap.
  while (running() < options_.balance_hot_limit && operators_.size() < options_.max_operators) {
    auto [lo, hi] = std::minmax_element(
        peer.begin(), peer.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    const uint64_t from = hi->first, to = lo->first;
    if (!unbalanced(hi->second, lo->second)) return;
    const std::string to_host = HostOf(to);
    uint64_t pick = 0, written = 0;
    for (const Hot& r : hot) {
      if (operators_.count(r.id) || 2 * r.written > hi->second - lo->second || r.written == 0) {
        continue;
      }
      const auto& cs = r.hb->region().region().conf_state();
      if (!Has(cs.voters(), from) || Has(cs.voters(), to) || cs.learners_size() > 0 ||
          r.hb->pending_peers_size() > 0) {
        continue;
      }
      bool ok = true;
      for (uint64_t v : cs.voters()) {
        ok &= StoreHealth(v, now) == Health::kUp;
        if (v != from && !to_host.empty()) ok &= HostOf(v) != to_host;
      }
      if (!ok) continue;
      pick = r.id;
      written = r.written;
      break;
    }
    if (pick == 0) return;
    StartOperator(pick, "hot-peer",
                  fmt::format("store {} applies {} KiB/s of hot writes, store {} {} KiB/s", from,
                              hi->second >> 10, to, lo->second >> 10),
                  {Step(Operator::ADD_LEARNER, to), Step(Operator::PROMOTE, to),
                   Step(Operator::REMOVE_PEER, from)});
    hi->second -= written;
    lo->second += written;
  }
}

}  // namespace micedb::coordinator
