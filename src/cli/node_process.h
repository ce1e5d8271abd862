// `micedb start`: one node process.
#pragma once

#include "cli/start_options.h"

namespace micedb::cli {

// Validates the options, locks and opens the data directory, then serves until SIGINT or
// SIGTERM. Returns the process exit code: 2 when the start is refused (bad flag, unusable or
// locked data directory) with a one-line error on stderr; a refused start changes nothing in an
// existing data directory.
int RunNode(const StartOptions& opts);

}  // namespace micedb::cli
