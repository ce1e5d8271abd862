// What a store runs for the bodies of region requests: the seam between the replication layer
// (src/store, which owns the envelope, the epoch and key-range checks, dedup and the apply
// batch; store/apply.h) and the data model (src/kv for raw key-value, src/txn for the
// transactional keyspace).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/strong_id.h"
#include "micedb/coordinator.pb.h"
#include "micedb/kv.pb.h"
#include "micedb/store.pb.h"
#include "micedb/txn.pb.h"
#include "storage/engine.h"

namespace micedb::store {

// One apply round of one region: bodies are applied in log order and their writes go to the
// store's WriteBatch, which the store writes together with the region's applied index.
class ApplyRound {
 public:
  virtual ~ApplyRound() = default;
  // Applies one kv body committed at `index`. Deterministic: every replica computes the same
  // writes and result from the same entries; it reads the engine plus the round's own earlier
  // writes. Never fails: a command that cannot run gives an error result. (A storage failure
  // stops the process: the replica could otherwise diverge.) `answering` is true on the
  // replica whose client waits for the result; the others may skip work that only shapes
  // the result (a txn's reads), as long as what they store is the same.
  virtual kv::CommandResult ApplyKv(const kv::Command& cmd, LogIndex index, bool answering) = 0;
  // Applies one Percolator step (body `txn`, docs/transactions.md) committed at `index`, as
  // deterministically as ApplyKv. A state machine without transactions refuses it.
  virtual txn::pb::TxnResponse ApplyTxn(const txn::pb::TxnRequest& req, LogIndex index) {
    (void)req;
    (void)index;
    txn::pb::TxnResponse r;
    r.set_invalid("this store serves no transactions");
    return r;
  }
  // The region's range changed in the middle of the round (a split applied): later commands
  // act on `region`, and still see the round's earlier writes.
  virtual void SetRegion(const RegionDescriptor& region) { (void)region; }
  // Applies one coordinator command (body `meta`, the meta region only; src/coordinator), as
  // deterministically as ApplyKv. A state machine that holds no coordinator state refuses it.
  virtual coordinator::MetaResult ApplyMeta(const coordinator::MetaCommand& cmd, LogIndex index) {
    (void)cmd;
    (void)index;
    coordinator::MetaResult r;
    r.set_error("this region holds no coordinator state");
    return r;
  }
};

// Why a transactional write is not proposed (StateMachine::BeforeProposeTxn): `message` for
// people; retry_ms not 0: a passing condition, answered ServerBusy (else the request is
// refused as invalid).
struct TxnRefusal {
  std::string message;
  uint64_t retry_ms = 0;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Starts a round over `region` (the store's descriptor, which outlives the round and may
  // change between entries: SetRegion); writes go to `wb` (not owned; outlives the round). The
  // round lives until the store writes `wb`.
  virtual std::unique_ptr<ApplyRound> BeginRound(const RegionDescriptor& region,
                                                 storage::Engine* engine,
                                                 storage::WriteBatch* wb) = 0;
  // Runs a read-only kv command on `region` at `snapshot` (null: the engine's current state).
  // Thread-safe: called from the raft loop, and from client threads for lease and stale reads,
  // which pass a snapshot so that a command reading several keys sees one state.
  virtual kv::CommandResult ReadKv(const RegionDescriptor& region, storage::Engine* engine,
                                   const storage::Snapshot* snapshot, const kv::Command& cmd) = 0;
  // Runs a read-only coordinator command (body `meta`), as ReadKv. Thread-safe.
  virtual coordinator::MetaResult ReadMeta(const RegionDescriptor& region, storage::Engine* engine,
                                           const storage::Snapshot* snapshot,
                                           const coordinator::MetaCommand& cmd) {
    (void)region;
    (void)engine;
    (void)snapshot;
    (void)cmd;
    coordinator::MetaResult r;
    r.set_error("this region holds no coordinator state");
    return r;
  }
  // Runs a transactional read (get, batch_get, scan at a timestamp) on `region` at
  // `snapshot`, as ReadKv. Thread-safe.
  virtual txn::pb::TxnResponse ReadTxn(const RegionDescriptor& region, storage::Engine* engine,
                                       const storage::Snapshot* snapshot,
                                       const txn::pb::TxnRequest& req) {
    (void)region;
    (void)engine;
    (void)snapshot;
    (void)req;
    txn::pb::TxnResponse r;
    r.set_invalid("this store serves no transactions");
    return r;
  }
  // On the leader of `region` in `term`, on the store's loop, before a transactional write is
  // proposed: may change it (a one-phase commit the leader cannot vouch for becomes a plain
  // prewrite), or refuse it (*refused set: nothing is proposed). Returns what to call once
  // the entry has applied or can no longer apply (null: nothing). Thread-safe.
  virtual std::function<void()> BeforeProposeTxn(const RegionDescriptor& region, uint64_t term,
                                                 txn::pb::TxnRequest* req, TxnRefusal* refused) {
    (void)region;
    (void)term;
    (void)req;
    (void)refused;
    return nullptr;
  }
  // Before a transactional read takes its snapshot: 0 to go on, else the milliseconds to
  // wait before retrying (a one-phase commit of a key it reads is on its way). Thread-safe.
  virtual uint64_t TxnReadWait(const RegionDescriptor& region, const txn::pb::TxnRequest& req) {
    (void)region;
    (void)req;
    return 0;
  }
  // The engine keys a transactional request names (E(K) of each), as EngineKeys. Thread-safe.
  virtual void TxnEngineKeys(const txn::pb::TxnRequest& req, std::vector<std::string>* keys) const {
    (void)req;
    (void)keys;
  }
  // The engine keys `cmd` names (appended to *keys), for the store's key-range check. Keyless
  // commands (scans, DBSIZE, FLUSHALL) name none: they act on the region's own range.
  // Thread-safe.
  virtual void EngineKeys(const kv::Command& cmd, std::vector<std::string>* keys) const = 0;
  // What the dedup record of an applied request keeps of its result: what a retry needs,
  // small, and the same on every replica whatever `answering` was. Thread-safe.
  virtual kv::CommandResult ForRetry(const kv::Command& cmd, kv::CommandResult result) const {
    (void)cmd;
    return result;
  }
};

}  // namespace micedb::store
