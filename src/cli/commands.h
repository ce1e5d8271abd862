// The `micedb` command: parses argv and runs a subcommand.
#pragma once

namespace micedb::cli {

// Exit codes: 0 success, 1 runtime failure, 2 bad usage or a start that was refused (bad flag,
// unusable or locked data directory). Errors are printed as one line on stderr.
int Main(int argc, char** argv);

}  // namespace micedb::cli
