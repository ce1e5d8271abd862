// KvBackend: where the KV front ends (RESP, later gRPC) send commands. The replicated store
// implements it by routing to region leaders and proposing writes through Raft; LocalBackend
// (kv/local_backend.h) runs the state machine on one engine, for tests and tools.
#pragma once

#include <functional>

#include "common/result.h"
#include "micedb/kv.pb.h"

namespace micedb::kv {

enum class ReadMode {
  kLinearizable,  // reflects every write acknowledged before the read began (default)
  kLocalStale,    // served by the local replica; may miss recent writes (READONLY)
};

class KvBackend {
 public:
  using Callback = std::function<void(Result<CommandResult>)>;

  virtual ~KvBackend() = default;

  // Runs `cmd`. Writes (IsWriteCommand, kv/state_machine.h) are applied through the
  // replicated log and acknowledged only once durable on a quorum and applied; `mode` applies
  // to reads only. cmd.now_ms is set by the caller (the gateway's wall clock).
  //
  // `done` is called exactly once, from any thread, possibly before Execute returns. A
  // command-level failure (WRONGTYPE, not an integer, ...) is an OK Result holding an error
  // CommandResult. A non-OK Status means the command could not be served:
  //   Unavailable, NotLeader  no leader could take it; nothing was applied (safe to retry)
  //   TimedOut                no answer in time; a write may or may not have been applied
  //   others                  internal or storage failures
  // Thread-safe: may be called from any number of threads at once.
  virtual void Execute(Command cmd, ReadMode mode, Callback done) = 0;
};

}  // namespace micedb::kv
