#include "router/region_cache.h"

#include <vector>

namespace micedb::router {

namespace {
bool Contains(const store::RegionDescriptor& d, std::string_view key) {
  return key >= d.start_key() && (d.end_key().empty() || key < d.end_key());
}
// Ranges [a.start, a.end) and [b.start, b.end) share a key.
bool Overlap(const store::RegionDescriptor& a, const store::RegionDescriptor& b) {
  const bool a_before_b_end = b.end_key().empty() || a.start_key() < b.end_key();
  const bool b_before_a_end = a.end_key().empty() || b.start_key() < a.end_key();
  return a_before_b_end && b_before_a_end;
}
}  // namespace

bool RegionCache::Older(const store::RegionEpoch& a, const store::RegionEpoch& b) {
  return (a.version() < b.version() && a.conf_ver() <= b.conf_ver()) ||
         (a.conf_ver() < b.conf_ver() && a.version() <= b.version());
}

std::optional<RegionRoute> RegionCache::Locate(std::string_view engine_key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_start_.upper_bound(engine_key);
  if (it == by_start_.begin()) return std::nullopt;
  --it;
  if (!Contains(it->second.desc, engine_key)) return std::nullopt;
  return it->second;
}

std::optional<RegionRoute> RegionCache::Get(uint64_t region_id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = start_of_.find(region_id);
  if (it == start_of_.end()) return std::nullopt;
  return by_start_.at(it->second);
}

void RegionCache::Update(const store::RegionDescriptor& desc, NodeId leader) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<uint64_t> drop;
  NodeId known_leader;
  // Candidates: the entry at or before desc's start and every entry starting inside it.
  auto it = by_start_.upper_bound(desc.start_key());
  if (it != by_start_.begin()) --it;
  for (; it != by_start_.end(); ++it) {
    const store::RegionDescriptor& cached = it->second.desc;
    if (!desc.end_key().empty() && cached.start_key() >= desc.end_key()) break;
    if (!Overlap(cached, desc)) continue;
    if (Older(desc.epoch(), cached.epoch())) return;  // what we hold is newer
    if (cached.id() == desc.id()) known_leader = it->second.leader;
    drop.push_back(cached.id());
  }
  if (auto same = start_of_.find(desc.id()); same != start_of_.end()) {
    const RegionRoute& cached = by_start_.at(same->second);
    if (Older(desc.epoch(), cached.desc.epoch())) return;
    known_leader = cached.leader;
    drop.push_back(desc.id());
  }
  for (uint64_t id : drop) EraseLocked(id);
  by_start_[desc.start_key()] = RegionRoute{desc, leader.valid() ? leader : known_leader};
  start_of_[desc.id()] = desc.start_key();
}

void RegionCache::SetLeader(uint64_t region_id, NodeId leader) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = start_of_.find(region_id);
  if (it != start_of_.end()) by_start_.at(it->second).leader = leader;
}

void RegionCache::Invalidate(uint64_t region_id) {
  std::lock_guard<std::mutex> l(mu_);
  EraseLocked(region_id);
}

void RegionCache::EraseLocked(uint64_t region_id) {
  auto it = start_of_.find(region_id);
  if (it == start_of_.end()) return;
  by_start_.erase(it->second);
  start_of_.erase(it);
}

size_t RegionCache::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return start_of_.size();
}

}  // namespace micedb::router
