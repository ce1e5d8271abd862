#include "raft/log_storage.h"

namespace micedb::raft {

// A compacted index is "not found": the entry existed once but is gone for good, and the
// caller must fall back to a snapshot. Past-the-end is "unavailable": it may exist later.
Status CompactedError() { return Status::NotFound("raft log: requested index is compacted"); }
Status UnavailableError() {
  return Status::Unavailable("raft log: requested index is unavailable");
}
bool IsCompacted(const Status& s) { return s.code() == StatusCode::kNotFound; }
bool IsUnavailable(const Status& s) { return s.code() == StatusCode::kUnavailable; }

}  // namespace micedb::raft
