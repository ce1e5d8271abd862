// Status code translation at the gRPC edge of the KV API (docs/kv-grpc.md, "Errors").
// Thread-safe (pure functions).
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace micedb::kv {

// Trailing metadata key the service sets (value "1") on an UNAVAILABLE answer when the store
// said that nothing was applied, so even a non-idempotent call may be sent again. A client
// seeing UNAVAILABLE without it cannot tell: the connection may have dropped after the
// request arrived.
inline constexpr char kNotAppliedMetadata[] = "micedb-not-applied";

// Our Status as a gRPC status for a client: Unavailable and NotLeader become UNAVAILABLE
// (nothing was applied; safe to retry), TimedOut DEADLINE_EXCEEDED (a write may or may not
// have been applied), InvalidArgument INVALID_ARGUMENT, and so on; codes with no closer match
// become INTERNAL. The message is kept.
grpc::Status ToGrpcStatus(const Status& status);

// A gRPC status seen by a client as our Status: the inverse of ToGrpcStatus where there is
// one (CANCELLED becomes Aborted; codes with no closer match Internal). The message is kept,
// prefixed with nothing; OK becomes OK.
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace micedb::kv
