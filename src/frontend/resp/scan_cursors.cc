#include "frontend/resp/scan_cursors.h"

namespace micedb::resp {

uint64_t ScanCursors::Add(std::string_view resume_key) {
  while (cursors_.size() >= capacity_) cursors_.erase(cursors_.begin());
  const uint64_t id = next_id_++;
  cursors_.emplace(id, std::string(resume_key));
  return id;
}

std::optional<std::string> ScanCursors::Find(uint64_t id) const {
  auto it = cursors_.find(id);
  if (it == cursors_.end()) return std::nullopt;
  return it->second;
}

}  // namespace micedb::resp
