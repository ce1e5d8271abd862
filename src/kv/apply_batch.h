// ApplyBatch: the state of one apply round. Writes are recorded in a storage::WriteBatch (for
// the store to commit atomically together with its applied index) and in an in-memory overlay,
// so reads made later in the same round see them: several log entries applied in one round
// behave exactly as if each had been written to the engine before the next was applied.
//
//   ApplyBatch batch(&engine);
//   for (entry : committed) results.push_back(sm.Apply(cmd, entry.index, batch));
//   batch.mutable_write_batch()->Put(Cf::kRaft, applied_key, ...);
//   engine.Write(batch.write_batch(), {.sync = true});
//   batch.Reset();
//
// Reads of keys not written in the round go to the engine's latest state, so the engine must
// not be written by anyone else during a round. Thread-compatible.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/read_view.h"
#include "storage/engine.h"
#include "storage/write_batch.h"

namespace micedb::kv {

class ApplyBatch final : public ReadView {
 public:
  // `engine` is not owned and must outlive the batch.
  explicit ApplyBatch(storage::Engine* engine);
  // Records the writes in `out` (not owned; outlives the batch) instead of a batch of its own,
  // so that a store can collect several regions' rounds and its own records in one batch
  // without copying. write_batch() and mutable_write_batch() then refer to `out`.
  ApplyBatch(storage::Engine* engine, storage::WriteBatch* out);
  ApplyBatch(const ApplyBatch&) = delete;
  ApplyBatch& operator=(const ApplyBatch&) = delete;

  Result<std::optional<std::string>> Get(storage::Cf cf, std::string_view key) override;
  // A merged view of the engine and the pending writes. Do not write to the batch while the
  // cursor is in use.
  std::unique_ptr<ScanCursor> Scan(storage::Cf cf, std::string_view lower,
                                   std::string_view upper) override;

  void Put(storage::Cf cf, std::string_view key, std::string_view value);
  void PutOwned(storage::Cf cf, std::string_view key, std::string value);  // one copy fewer
  void Delete(storage::Cf cf, std::string_view key);
  // Removes begin <= k < end. Requires begin <= end.
  void DeleteRange(storage::Cf cf, std::string_view begin, std::string_view end);

  const storage::WriteBatch& write_batch() const { return *out_; }
  // For the store's own ops (applied index); such writes are not visible through Get/Scan.
  storage::WriteBatch* mutable_write_batch() { return out_; }

  // Forgets every pending write; call once the write batch has been written to the engine.
  void Reset();

 private:
  using Overlay = std::map<std::string, std::optional<std::string>, std::less<>>;
  struct CfState {
    Overlay overlay;  // nullopt: deleted in this round
    // Ranges deleted in this round; they hide engine keys (overlay entries written after a
    // range delete are kept, earlier ones are erased by it).
    std::vector<std::pair<std::string, std::string>> deleted_ranges;
  };
  friend class MergedCursor;

  CfState& State(storage::Cf cf) { return cfs_[storage::CfIndex(cf)]; }

  storage::Engine* engine_;
  storage::WriteBatch batch_;  // unused when writes go to a caller's batch
  storage::WriteBatch* out_;   // &batch_ or the caller's
  std::array<CfState, storage::kNumCfs> cfs_;
};

}  // namespace micedb::kv
