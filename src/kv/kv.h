// The public face of src/kv, the raw key-value front ends and state machine:
//   KvStateMachine  (kv/state_machine.h)  deterministic apply of kv Commands; one per region
//   ApplyBatch      (kv/apply_batch.h)    the writes of one apply round, visible to later reads
//   KvBackend       (kv/backend.h)        where front ends send Commands (the store implements it)
//   LocalBackend    (kv/local_backend.h)  a backend on one engine, no replication
//   RespServer      (kv/resp_server.h)    the Redis-protocol server; ServerOptions for its limits
// Commands and results are protobuf messages (proto/micedb/kv.proto). Formats: docs/resp.md,
// docs/kv-format.md.
#pragma once

#include "kv/apply_batch.h"
#include "kv/backend.h"
#include "kv/local_backend.h"
#include "kv/resp_server.h"
#include "kv/server_options.h"
#include "kv/state_machine.h"
