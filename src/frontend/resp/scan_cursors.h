// ScanCursors: SCAN's integer cursors for one connection. Redis cursors are numbers, but a
// resume point in our ordered keyspace is a key, so each connection remembers a bounded table
// cursor id -> next key to examine; the oldest entries are forgotten first. An id is never
// reused on a connection. Cursor 0 means "start" (and, returned, "done"). Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace micedb::resp {

class ScanCursors {
 public:
  explicit ScanCursors(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Remembers `resume_key` under a new id (> 0), forgetting the oldest entry when full.
  uint64_t Add(std::string_view resume_key);
  // The resume key of `id`; nullopt when unknown or already forgotten.
  std::optional<std::string> Find(uint64_t id) const;

  size_t size() const { return cursors_.size(); }

 private:
  size_t capacity_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::string> cursors_;  // ordered by id, so oldest first
};

}  // namespace micedb::resp
