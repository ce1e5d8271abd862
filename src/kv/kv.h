// The public face of src/kv, the raw key-value state machine and the seam front ends use:
//   KvStateMachine  (kv/state_machine.h)  deterministic apply of kv Commands; one per region
//   ApplyBatch      (kv/apply_batch.h)    the writes of one apply round, visible to later reads
//   KvBackend       (kv/backend.h)        where front ends send Commands (the store implements it)
//   LocalBackend    (kv/local_backend.h)  a backend on one engine, no replication
// Commands and results are protobuf messages (proto/micedb/kv.proto); the front ends that speak
// them are src/frontend/resp (Redis protocol) and src/kv/grpc. Format: docs/kv-format.md.
#pragma once

#include "kv/apply_batch.h"
#include "kv/backend.h"
#include "kv/local_backend.h"
#include "kv/state_machine.h"
