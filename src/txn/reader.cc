#include "txn/reader.h"

#include <limits>

#include <fmt/format.h>

namespace micedb::txn {

using storage::Cf;

namespace {
constexpr uint64_t kMaxTs = std::numeric_limits<uint64_t>::max();

// A rollback folded into another transaction's commit record, answered as a protected
// rollback record at start_ts.
VersionedWrite Overlapped(uint64_t start_ts) {
  VersionedWrite rollback;
  rollback.commit_ts = start_ts;
  rollback.write.kind = WriteKind::kRollback;
  rollback.write.start_ts = start_ts;
  rollback.write.protected_rollback = true;
  return rollback;
}
}  // namespace

Result<std::optional<Lock>> MvccReader::LoadLock(std::string_view ekey) {
  ++steps_;
  MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> got, view_->Get(Cf::kLock, ekey));
  if (!got) return std::optional<Lock>();
  MICEDB_ASSIGN_OR_RETURN(Lock lock, Lock::Decode(*got));
  return std::optional<Lock>(std::move(lock));
}

template <typename Take>
Result<std::optional<VersionedWrite>> MvccReader::FirstWrite(std::string_view ekey, uint64_t hi_ts,
                                                             uint64_t lo_ts, Take take) {
  std::string upper = KeyWithTs(ekey, lo_ts);
  upper.push_back('\0');  // lo_ts included
  auto it = view_->Scan(Cf::kWrite, KeyWithTs(ekey, hi_ts), upper);
  for (; it->Valid(); it->Next()) {
    ++steps_;
    std::string_view k;
    VersionedWrite vw;
    if (!SplitTs(it->key(), &k, &vw.commit_ts) || k != ekey) {
      return Status::Corruption("write record key does not parse");
    }
    MICEDB_ASSIGN_OR_RETURN(vw.write, Write::Decode(it->value()));
    if (take(vw)) return std::optional<VersionedWrite>(std::move(vw));
  }
  MICEDB_RETURN_IF_ERROR(it->status());
  return std::optional<VersionedWrite>();
}

Result<std::optional<VersionedWrite>> MvccReader::TxnWrite(std::string_view ekey,
                                                           uint64_t start_ts) {
  // A commit is keyed above start_ts, a rollback at it -- or, overlapped, folded into the
  // commit record of another transaction keyed at start_ts (§3b).
  MICEDB_ASSIGN_OR_RETURN(std::optional<VersionedWrite> vw,
                          FirstWrite(ekey, kMaxTs, start_ts, [start_ts](const VersionedWrite& v) {
                            return v.write.start_ts == start_ts ||
                                   (v.write.overlapped_rollback && v.commit_ts == start_ts);
                          }));
  if (vw && vw->write.start_ts != start_ts)
    return std::optional<VersionedWrite>(Overlapped(start_ts));
  return vw;
}

Result<MvccReader::PrewriteRecords> MvccReader::ForPrewrite(std::string_view ekey,
                                                            uint64_t start_ts) {
  PrewriteRecords out;
  // One walk down to start_ts. The transaction's own record wins over a change above it (a
  // duplicate of a prewrite that committed, with a later commit on top, is answered as
  // committed, as TxnWrite would); so the walk goes on past the first change.
  MICEDB_ASSIGN_OR_RETURN(
      out.own, FirstWrite(ekey, kMaxTs, start_ts, [&](const VersionedWrite& v) {
        if (v.write.start_ts == start_ts ||
            (v.write.overlapped_rollback && v.commit_ts == start_ts)) {
          return true;
        }
        if (!out.change && v.commit_ts > start_ts && v.write.kind != WriteKind::kRollback) {
          out.change = v;
        }
        return false;
      }));
  if (out.own && out.own->write.start_ts != start_ts) out.own = Overlapped(start_ts);
  return out;
}

Result<std::optional<Write>> MvccReader::WriteAt(std::string_view ekey, uint64_t ts) {
  ++steps_;
  MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> got,
                          view_->Get(Cf::kWrite, KeyWithTs(ekey, ts)));
  if (!got) return std::optional<Write>();
  MICEDB_ASSIGN_OR_RETURN(Write w, Write::Decode(*got));
  return std::optional<Write>(std::move(w));
}

Result<std::string> MvccReader::PutValue(std::string_view ekey, const Write& put) {
  if (put.short_value) return *put.short_value;
  ++steps_;
  MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> got,
                          view_->Get(Cf::kDefault, KeyWithTs(ekey, put.start_ts)));
  if (!got) {
    return Status::Corruption(fmt::format(
        "a committed put (start_ts {}) has no value in the default family", put.start_ts));
  }
  return std::move(*got);
}

Result<std::optional<std::string>> MvccReader::ValueAt(std::string_view ekey, uint64_t ts) {
  // Rollback and lock records change no value: the newest put or delete decides.
  MICEDB_ASSIGN_OR_RETURN(
      std::optional<VersionedWrite> vw, FirstWrite(ekey, ts, 0, [](const VersionedWrite& v) {
        return v.write.kind == WriteKind::kPut || v.write.kind == WriteKind::kDelete;
      }));
  if (!vw || vw->write.kind == WriteKind::kDelete) return std::optional<std::string>();
  MICEDB_ASSIGN_OR_RETURN(std::string v, PutValue(ekey, vw->write));
  return std::optional<std::string>(std::move(v));
}

Result<std::vector<MvccReader::KeyLock>> MvccReader::ScanLocks(std::string_view ebegin,
                                                               std::string_view eend, size_t limit,
                                                               bool* more) {
  auto it = view_->Scan(Cf::kLock, ebegin, eend.empty() ? kTxnKeysEnd : eend);
  std::vector<KeyLock> out;
  *more = false;
  for (; it->Valid(); it->Next()) {
    if (out.size() >= limit) {
      *more = true;
      break;
    }
    ++steps_;
    MICEDB_ASSIGN_OR_RETURN(Lock lock, Lock::Decode(it->value()));
    out.push_back(KeyLock{std::string(it->key()), std::move(lock)});
  }
  MICEDB_RETURN_IF_ERROR(it->status());
  return out;
}

}  // namespace micedb::txn
