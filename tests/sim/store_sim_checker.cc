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

}  // namespace micedb::sim
