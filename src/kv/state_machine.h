// KvStateMachine: the deterministic raw key-value state machine that every replica of a region
// runs (DESIGN §2, §4). Commands and results are proto/micedb/kv.proto messages; a refused
// command's result is a typed KvError, which each front end words for its own protocol. The
// stored format is in docs/kv-format.md.
//
// Writes go through Apply, which must give the same result and the same writes on every
// replica: it reads only through the ApplyBatch, takes time from the command's now_ms and
// stamps every key it writes with `log_index` (the key's mod revision, which WATCH compares).
// Reads go through Read at the reader's own clock.
//
// A state machine serves one key range of the user keyspace (a region); scans, DBSIZE and
// FLUSHALL stay inside it. Point commands on keys outside it are not checked here: routing
// them correctly is the store's job.
//
// Thread-safety: const methods only, no mutable state; any number of threads may use one
// instance concurrently (each with its own ApplyBatch or engine view).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/strong_id.h"
#include "kv/apply_batch.h"
#include "kv/read_view.h"
#include "micedb/kv.pb.h"
#include "storage/engine.h"

namespace micedb::kv {

// User keys start <= k < end; an empty end means no upper limit.
struct KeyRange {
  std::string start;
  std::string end;

  bool Contains(std::string_view key) const { return key >= start && (end.empty() || key < end); }
};

struct StateMachineOptions {
  // Longest value a write may produce (SET, APPEND, ...). Must be the same on every replica.
  size_t max_value_bytes = size_t{64} << 20;
  // Most bytes of values one reply carries: a read (GET, MGET, GETRANGE, alone or in a txn)
  // that would pass it is answered RESULT_TOO_LARGE instead, and a txn's write results past
  // it are dropped (the writes still apply). Read results and write results each have this
  // budget. Must be the same on every replica (write results go into dedup records).
  size_t max_result_bytes = size_t{128} << 20;
};

// Whether Apply computes a txn's reads. Only the replica that answers the client needs them;
// the others skip them (their items are RESULT_NOT_KEPT), which changes nothing stored.
enum class TxnReads { kCompute, kSkip };

// True for commands that change state (and so must go through Raft): everything but the
// reads, and a txn holding at least one write.
bool IsWriteCommand(const Command& cmd);

class KvStateMachine {
 public:
  explicit KvStateMachine(KeyRange range = {}, StateMachineOptions options = {});

  const KeyRange& range() const { return range_; }
  void set_range(KeyRange range) { range_ = std::move(range); }

  // Applies `cmd` (read or write) at time cmd.now_ms, reading through `batch` and recording
  // writes in it. Command-level failures (not an integer, value too big, ...) are a
  // CommandResult holding a KvError, and write nothing. A non-OK Status means storage failed
  // (IoError, Corruption); the replica must then stop rather than continue with a state that
  // may differ from the others'.
  Result<CommandResult> Apply(const Command& cmd, LogIndex log_index, ApplyBatch& batch,
                              TxnReads reads = TxnReads::kCompute) const;

  // What a retry of an applied request gets (kept in its dedup record): `result` with every
  // read item of a txn, and every item or result over 4 KiB, replaced by RESULT_NOT_KEPT.
  // Identical on every replica whether or not its Apply computed the reads.
  static CommandResult ForRetry(const Command& cmd, CommandResult result);

  // Runs a read command against `view` at `now_ms`. A write command (or a txn holding one)
  // is answered with a WRITE_ON_READ_PATH error result. Status as for Apply.
  Result<CommandResult> Read(const Command& cmd, ReadView& view, int64_t now_ms) const;

  // Convenience: Read on `engine` at its latest state or at `snapshot` (may be null).
  Result<CommandResult> Read(const Command& cmd, storage::Engine* engine,
                             const storage::Snapshot* snapshot, int64_t now_ms) const;

  // Active expiry: a DeleteExpired command for up to `limit` keys of the range, from
  // *resume_key on, whose expiry is at or before now_ms. *resume_key is advanced past the
  // keys examined (and cleared at the end of the range), so repeated calls walk the whole
  // range. Examines at most 20 * limit keys. Returns a command with no keys when none are due.
  // With `scan`: examines at most scan->max_examined keys instead (when not 0), and reports
  // how many it examined and whether any of them has a time to live at all.
  struct ExpiryScan {
    size_t max_examined = 0;
    size_t examined = 0;
    bool saw_expiry = false;
  };
  Result<Command> CollectExpired(ReadView& view, int64_t now_ms, size_t limit,
                                 std::string* resume_key, ExpiryScan* scan = nullptr) const;

 private:
  KeyRange range_;  // set_range: a split applied in the middle of a round
  const StateMachineOptions options_;
};

}  // namespace micedb::kv
