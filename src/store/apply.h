// Internal to src/store: the region request envelope on the apply and read paths. Decoding a
// raft entry, the checks every request passes before it runs (region, epoch, key range;
// DESIGN §8 rule 7), at-most-once dedup of writes, and dispatch by body to the state machine.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/strong_id.h"
#include "micedb/region.pb.h"
#include "storage/engine.h"
#include "storage/write_batch.h"
#include "store/state_machine.h"

namespace micedb::store {

// The raft entry data of `req` (the envelope with its format version set).
std::string EncodeEntry(region::RegionRequest req);

enum class EntryFormat { kEnvelope, kLegacyCommand, kBad };
// Decodes raft entry data into *req. kLegacyCommand: the entry predates the envelope (a bare
// kv.Command); *req then holds it as the kv body, with the request id moved to the header and
// no epoch (such an entry is not epoch-checked). kBad: neither parses.
EntryFormat DecodeEntry(std::string_view data, region::RegionRequest* req);

// The error to answer `req` with on `region`, or an empty optional when it may run there:
// RegionNotFound for another region's request, EpochNotMatch when the epoch's version differs
// (admin requests: conf_ver too), KeyNotInRegion for a key outside the range, InvalidRequest
// for a request without a body. Thread-safe.
// Stamps a write the leader is about to propose with its wall clock (propose_ts_ms, the
// region's replicated time). Refuses a deduplicated request whose gateway clock is more than
// half the dedup window (5 min) off the leader's: its record would expire too early, or
// linger. Thread-safe.
std::optional<region::RegionResponse> StampProposal(region::RegionRequest* req,
                                                    int64_t leader_wall_ms);

// The engine keys a kv or txn request names (appended to *keys). Thread-safe.
void RequestEngineKeys(const StateMachine& sm, const region::RegionRequest& req,
                       std::vector<std::string>* keys);
// Whether a txn body only reads (get, batch_get, scan): served, never proposed.
bool IsTxnRead(const txn::pb::TxnRequest& req);

// With `anchor`, a kv request that passes gets there the key its dedup record goes beside
// (its first engine key, or the region's start for a keyless one: DedupKey).
std::optional<region::RegionResponse> CheckRequest(const RegionDescriptor& region,
                                                   const region::RegionRequest& req,
                                                   const StateMachine& sm,
                                                   std::string* anchor = nullptr);

// Runs a read request on `region` at `snapshot` (null: the engine's latest state) after
// CheckRequest. Thread-safe (as StateMachine::ReadKv).
region::RegionResponse ServeRead(StateMachine* sm, const RegionDescriptor& region,
                                 storage::Engine* engine, const storage::Snapshot* snapshot,
                                 const region::RegionRequest& req);

// One apply round of one region. For each committed normal entry: decode, check (a request
// that fails a check is answered with its error and changes nothing), dedup (a request id
// applied before gets its first result again), then the body's state machine. Every write,
// dedup records included, goes to `wb`. Loop thread only.
class Applier {
 public:
  // Not owned; all must outlive the applier, which lives until `wb` is written.
  Applier(StateMachine* sm, const RegionDescriptor& region, storage::Engine* engine,
          storage::WriteBatch* wb);
  // Applies the entry at `index`; `answering`: a client here waits for the result (see
  // ApplyRound::ApplyKv). An admin entry (a split) that passes its checks is moved to
  // *admin for the store to apply, and nothing is written (null: refused as invalid).
  region::RegionResponse Apply(std::string_view data, LogIndex index, bool answering,
                               region::AdminRequest* admin = nullptr);
  // The latest leader's clock (propose_ts_ms) among the entries applied so far; 0 if none.
  int64_t horizon_ms() const { return horizon_ms_; }
  // The region's descriptor (held by reference) changed: a split was applied between entries.
  // The round goes on (its earlier writes stay visible to later entries) on the new range.
  void RegionChanged() {
    if (round_) round_->SetRegion(region_);
  }
  // How many at-most-once records this applier wrote, and the oldest request time among them
  // (INT64_MAX: none).
  size_t records_written() const { return written_.size(); }
  int64_t oldest_written_ms() const { return oldest_written_ms_; }

 private:
  kv::CommandResult RunKv(const kv::Command& cmd, LogIndex index, bool answering);

  StateMachine* sm_;
  const RegionDescriptor& region_;
  storage::Engine* engine_;
  storage::WriteBatch* wb_;
  std::unique_ptr<ApplyRound> round_;  // started at the first kv body
  // Dedup records written in this round (not in the engine yet), by key.
  std::map<std::string, std::string, std::less<>> written_;
  int64_t horizon_ms_ = 0;
  int64_t oldest_written_ms_ = INT64_MAX;
};

// Removing old at-most-once records, which each replica does on its own schedule (they are not
// compared between replicas). A record may go once the region has applied an entry stamped by
// a leader (propose_ts_ms) more than the dedup window (10 min) after the record's request
// time: every later entry's own request time is within half the window of its stamp
// (StampProposal), so, with the leaders' clocks within half the window of each other, no later
// entry can look that record up. The same bound the records always relied on.
struct SweepResult {
  Status status;
  size_t scanned = 0;
  size_t deleted = 0;
  std::string next_cursor;  // empty: the sweep reached the end of the region
  // The oldest request time among the records scanned and kept (INT64_MAX: none).
  int64_t oldest_kept_ms = INT64_MAX;
};
// How long a record is kept at least (by the leaders' clocks).
inline constexpr int64_t kDedupWindowMs = int64_t{10} * 60 * 1000;
// Scans at most `budget` records of `region` from `cursor` (empty: the first) and deletes into
// `wb` those that `horizon_ms` (Applier::horizon_ms's running maximum) makes old. Loop thread.
SweepResult SweepDedupRecords(storage::Engine* engine, const RegionDescriptor& region,
                              std::string_view cursor, int64_t horizon_ms, size_t budget,
                              storage::WriteBatch* wb);

}  // namespace micedb::store
