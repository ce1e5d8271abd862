// Constructors and helpers for the typed errors of region requests (proto/micedb/region.proto,
// docs/region-requests.md). Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "micedb/region.pb.h"

namespace micedb::store {

region::RegionResponse NotLeaderResponse(uint64_t region_id, uint64_t leader);
region::RegionResponse EpochNotMatchResponse(const RegionDescriptor& current);
region::RegionResponse KeyNotInRegionResponse(std::string_view engine_key,
                                              const RegionDescriptor& region);
region::RegionResponse RegionNotFoundResponse(uint64_t region_id);
region::RegionResponse ServerBusyResponse(std::string_view reason, uint64_t backoff_ms);
region::RegionResponse TimeoutResponse(std::string_view message);
region::RegionResponse StaleCommandResponse();
// The write was refused (not applied): the disk alarm is up (store/disk_alarm.h). `reason`
// says what the alarm saw.
region::RegionResponse NoSpaceResponse(std::string_view reason);
// The text every NOSPACE refusal starts with (clients see it after RESP's NOSPACE prefix).
inline constexpr std::string_view kNoSpaceMessage =
    "database or storage space exhausted, writes are refused until space is freed";
// A request that cannot run as sent (no body, does not parse): retrying cannot help.
region::RegionResponse InvalidRequestResponse(std::string_view message);

// The Status a caller that does not route sees for an error (admin commands, tests):
// NotLeader, NotFound (region not here), Unavailable (busy, stale command, stale epoch,
// key outside: retry after routing again), TimedOut, ResourceExhausted (no space: the write
// was not applied), InvalidArgument.
Status ToStatus(const region::RegionError& error);

}  // namespace micedb::store
