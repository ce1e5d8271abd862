// An Iterator over one std::map, for MemEngine. Internal to src/storage.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "storage/iterator.h"

namespace micedb::storage {

using MemMap = std::map<std::string, std::string, std::less<>>;

// Iterates `map` within [lower, upper) (an absent bound does not limit). The iterator keeps
// `map` alive; the map must not be modified while it is shared (MemEngine copies on write).
std::unique_ptr<Iterator> NewMemIterator(std::shared_ptr<const MemMap> map,
                                         std::optional<std::string> lower,
                                         std::optional<std::string> upper);

}  // namespace micedb::storage
