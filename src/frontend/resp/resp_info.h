// Internal to src/frontend/resp: the text of INFO ("# Section" headers and "field:value" lines,
// each ending in "\r\n", sections separated by a blank line), in Redis's field names where a field
// means the same thing.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/resp/resp_handlers.h"

namespace micedb::resp {

// Section names INFO knows, in output order.
inline constexpr std::string_view kInfoSections[] = {"server", "clients",      "replication",
                                                     "stats",  "commandstats", "keyspace"};

// The sections INFO's arguments ask for: none or "default" give every section but
// commandstats; "all" and "everything" give all; unknown names are ignored.
std::set<std::string, std::less<>> InfoSectionsFor(const std::vector<std::string>& args);

struct KeyspaceCounts {
  int64_t keys = 0;
  int64_t expires = 0;
};

// The INFO text for `sections` at `now_ms`; the keyspace section lists db0 only when `keyspace`
// is known and not empty.
std::string InfoText(const ServerContext& server,
                     const std::set<std::string, std::less<>>& sections,
                     std::optional<KeyspaceCounts> keyspace, int64_t now_ms);

}  // namespace micedb::resp
