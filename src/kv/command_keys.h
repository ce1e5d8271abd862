// The keys a kv Command names, and how a command is cut into parts by key: what the store's
// key-range check and the router's split by region need of a command. Thread-safe (pure
// functions).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "micedb/kv.pb.h"

namespace micedb::kv {

// Appends every user key `cmd` names to *keys, in the command's order, duplicates included: a
// Txn's watched keys, then its commands' keys. Keyless commands (SCAN, DBSIZE, FLUSHALL) add
// none.
void UserKeys(const Command& cmd, std::vector<std::string>* keys);

// Commands whose keys may be served by different regions independently, with the parts'
// results joined afterwards (JoinParts): the reads MGET, EXISTS, REVISIONS, and active
// expiry's DeleteExpired. Multi-key writes (DEL, MSET, MSETNX, a Txn) must run in one region:
// cut, they would not be atomic (docs/sharding.md §4; the router refuses them, CROSS_REGION).
bool Splittable(const Command& cmd);

// The command restricted to the keys at `positions` (indexes into UserKeys' order), with the
// same now_ms. Requires Splittable(cmd), or DEL, MSET or MSETNX (cut for a cross-region
// write, whose parts are prepared together: src/router/cross_region.cc).
Command PartOf(const Command& cmd, const std::vector<size_t>& positions);

// Joins the results of parts made by PartOf back into the result of the whole command:
// `parts[i]` is the result of the part with `positions[i]`; `total` is the number of keys.
// Arrays are put back in the client's order, counts are summed, MSET is OK when every part
// was. An error in any part is the result.
CommandResult JoinParts(const Command& cmd, size_t total,
                        const std::vector<std::vector<size_t>>& positions,
                        const std::vector<CommandResult>& parts);

}  // namespace micedb::kv
