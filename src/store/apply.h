// Internal to src/store: the region request envelope on the apply and read paths. Decoding a
// raft entry, the checks every request passes before it runs (region, epoch, key range;
// DESIGN §8 rule 7), at-most-once dedup of writes, and dispatch by body to the state machine.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

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

std::optional<region::RegionResponse> CheckRequest(const RegionDescriptor& region,
                                                   const region::RegionRequest& req,
                                                   const StateMachine& sm);

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
  // ApplyRound::ApplyKv).
  region::RegionResponse Apply(std::string_view data, LogIndex index, bool answering);

 private:
  kv::CommandResult RunKv(const kv::Command& cmd, LogIndex index, bool answering);

  StateMachine* sm_;
  const RegionDescriptor& region_;
  storage::Engine* engine_;
  storage::WriteBatch* wb_;
  std::unique_ptr<ApplyRound> round_;  // started at the first kv body
  // Dedup records written in this round (not in the engine yet), by key.
  std::map<std::string, std::string, std::less<>> written_;
};

}  // namespace micedb::store
