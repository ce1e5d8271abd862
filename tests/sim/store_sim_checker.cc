#include "tests/sim/store_sim_checker.h"

#include <algorithm>

#include <fmt/format.h>

namespace micedb::sim {

void RegisterChecker::WriteInvoked(const std::string& key, const std::string& value) {
  writes_[value] = Write{key, ++clock_, kNever};
  by_key_[key].push_back(value);
}

void RegisterChecker::WriteAcked(const std::string& value) {
  auto it = writes_.find(value);
  if (it == writes_.end()) return;
  it->second.visible = std::min(it->second.visible, ++clock_);
  it->second.acked = std::min(it->second.acked, clock_);
  ++writes_acked_;
}

uint64_t RegisterChecker::ReadInvoked(const std::string& key) {
  const uint64_t id = next_read_++;
  reads_[id] = Read{key, ++clock_};
  return id;
}

void RegisterChecker::ReadReturned(uint64_t id, const std::optional<std::string>& value) {
  auto rit = reads_.find(id);
  if (rit == reads_.end()) return;
  const Read read = rit->second;
  reads_.erase(rit);
  const uint64_t now = ++clock_;
  ++reads_checked_;
  done_[read.key].push_back(Done{value, read.invoked, now});
  auto report = [&](std::string detail) {
    out_->push_back({"read-linearizability",
                     fmt::format("read {} of {}: {}", id, read.key, std::move(detail))});
  };

  const Write* from = nullptr;
  if (value) {
    auto wit = writes_.find(*value);
    if (wit == writes_.end() || wit->second.key != read.key) {
      return report(
          fmt::format("returned \"{}\", which was never written to {}", *value, read.key));
    }
    if (wit->second.invoked > now) {
      return report(fmt::format("returned \"{}\", written only after the read ended", *value));
    }
    from = &wit->second;
  }
  for (const std::string& v : by_key_[read.key]) {
    const Write& w = writes_[v];
    if (w.visible >= read.invoked || &w == from) continue;
    if (from == nullptr) {
      return report(
          fmt::format("returned nothing, but the write of \"{}\" was acknowledged "
                      "or seen before the read began",
                      v));
    }
    if (from->visible < w.invoked) {
      return report(
          fmt::format("returned \"{}\", overwritten by \"{}\" before the read began", *value, v));
    }
  }
  if (value) {
    Write& w = writes_[*value];
    w.visible = std::min(w.visible, now);
  }
}

void RegisterChecker::Finish() {
  for (const auto& [key, reads] : done_) CheckKey(key, reads);
}

void RegisterChecker::CheckKey(const std::string& key, const std::vector<Done>& reads) {
  struct Zone {
    uint64_t f = kNever;  // earliest response in the cluster
    uint64_t s = 0;       // latest invocation in the cluster
    std::string value;
  };
  std::map<std::string, Zone> clusters;  // by value; "" is the absent key's virtual write
  clusters[""] = Zone{0, 0, "(absent)"};
  for (const Done& r : reads) {
    const std::string v = r.value.value_or("");
    auto w = writes_.find(v);
    if (r.value && (w == writes_.end() || w->second.key != key)) continue;  // reported already
    Zone& z = clusters[v];
    if (r.value && z.value.empty()) {
      z = Zone{w->second.acked, w->second.invoked, v};
      if (r.returned < w->second.invoked) continue;  // reported already
    }
    z.f = std::min(z.f, r.returned);
    z.s = std::max(z.s, r.invoked);
  }
  for (const std::string& v : by_key_[key]) {
    const Write& w = writes_[v];
    if (w.acked == kNever || clusters.contains(v)) continue;
    clusters[v] = Zone{w.acked, w.invoked, v};  // acknowledged, never read
  }
  std::vector<Zone> forward, backward;
  for (const auto& [v, z] : clusters) (z.f < z.s ? forward : backward).push_back(z);
  std::sort(forward.begin(), forward.end(), [](const Zone& a, const Zone& b) { return a.f < b.f; });
  auto report = [&](const Zone& a, const Zone& b, std::string_view how) {
    out_->push_back(
        {"linearizability", fmt::format("key {}: no order of its operations explains them: the "
                                        "write and reads of {} must take effect together across "
                                        "observations {}..{}, which {} those of {} ({}..{})",
                                        key, a.value, a.f, a.s, how, b.value, std::min(b.f, b.s),
                                        std::max(b.f, b.s))});
  };
  for (size_t i = 1; i < forward.size(); ++i) {
    if (forward[i].f < forward[i - 1].s) {
      return report(forward[i - 1], forward[i], "overlaps the span of");
    }
  }
  for (const Zone& b : backward) {
    // The forward zone starting last before b starts; forward zones are disjoint by now.
    auto it = std::upper_bound(forward.begin(), forward.end(), b.s,
                               [](uint64_t t, const Zone& z) { return t < z.f; });
    if (it == forward.begin()) continue;
    --it;
    if (it->f < b.s && b.f < it->s) return report(*it, b, "encloses the point of");
  }
}

}  // namespace micedb::sim
