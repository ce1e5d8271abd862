#include "tests/sim/tso_checker.h"

#include <algorithm>

#include <fmt/format.h>

namespace micedb::sim {

uint64_t TsoChecker::Invoked(uint64_t caller, int64_t now_ms) {
  const uint64_t id = calls_.size() + 1;
  calls_[id] = Call{caller, ++clock_, 0, now_ms, 0, std::nullopt, false};
  return id;
}

void TsoChecker::Completed(uint64_t id, int64_t now_ms, std::optional<uint64_t> ts) {
  auto it = calls_.find(id);
  if (it == calls_.end() || it->second.done) return;
  Call& c = it->second;
  c.done = true;
  c.completed = ++clock_;
  c.completed_ms = now_ms;
  c.ts = ts;
  (ts ? timestamps_ : failures_)++;
}

void TsoChecker::Report(std::string check, std::string detail) {
  out_->push_back({std::move(check), std::move(detail), 0, 0});
}

void TsoChecker::Finish(std::optional<int64_t> healed_ms, int64_t liveness_bound_ms) {
  std::vector<const Call*> ok;  // in invocation order
  for (const auto& [id, c] : calls_) {
    if (c.done && c.ts) ok.push_back(&c);
  }

  std::map<uint64_t, const Call*> seen;
  for (const Call* c : ok) {
    auto [it, fresh] = seen.emplace(*c->ts, c);
    if (!fresh) {
      Report("tso-unique", fmt::format("timestamp {} handed out twice: to caller {} at {} ms and "
                                       "to caller {} at {} ms",
                                       *c->ts, it->second->caller, it->second->completed_ms,
                                       c->caller, c->completed_ms));
    }
  }

  std::map<uint64_t, const Call*> last;  // by caller
  for (const Call* c : ok) {
    const Call*& prev = last[c->caller];
    if (prev != nullptr && *c->ts <= *prev->ts) {
      Report("tso-monotonic",
             fmt::format("caller {}: timestamp {} (asked at {} ms) is not above its previous {}",
                         c->caller, *c->ts, c->invoked_ms, *prev->ts));
    }
    prev = c;
  }

  // Real time: the largest timestamp among the calls answered before a call was invoked must
  // be below that call's.
  std::vector<const Call*> ended = ok;
  std::sort(ended.begin(), ended.end(),
            [](const Call* a, const Call* b) { return a->completed < b->completed; });
  std::vector<const Call*> best;  // prefix maxima of ts over `ended`
  best.reserve(ended.size());
  for (const Call* c : ended) {
    best.push_back(best.empty() || *c->ts > *best.back()->ts ? c : best.back());
  }
  for (const Call* c : ok) {
    auto i = std::lower_bound(ended.begin(), ended.end(), c->invoked,
                              [](const Call* e, uint64_t at) { return e->completed < at; }) -
             ended.begin();
    if (i > 0 && *best[i - 1]->ts >= *c->ts) {
      const Call* b = best[i - 1];
      Report("tso-real-time",
             fmt::format("caller {} got {} (asked at {} ms) after caller {} had got the larger or "
                         "equal {} (answered at {} ms)",
                         c->caller, *c->ts, c->invoked_ms, b->caller, *b->ts, b->completed_ms));
    }
  }

  if (healed_ms) {
    std::optional<int64_t> back;
    for (const Call* c : ok) {
      if (c->invoked_ms >= *healed_ms && (!back || c->completed_ms < *back)) back = c->completed_ms;
    }
    if (!back || *back - *healed_ms > liveness_bound_ms) {
      Report("tso-liveness",
             fmt::format("no timestamp within {} ms of healing at {} ms{}", liveness_bound_ms,
                         *healed_ms, back ? fmt::format(" (first at {} ms)", *back) : ""));
    }
  }
}

}  // namespace micedb::sim
