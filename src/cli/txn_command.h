// `micedb txn OP...`: one snapshot-isolation transaction over the gRPC API micedb.txn.v1
// (docs/transactions.md §7) at any node, or, with --stdin, one transaction per input line.
//
//   micedb txn put a 1 put b 2          # prints COMMIT <commit_ts>
//   micedb txn get a scan a - 10        # a's value (or (nil)), then key<TAB>value lines
//   micedb txn --read-ts TS get a       # read-only, at an earlier timestamp
//   micedb txn --oneshot put a 1 del b  # puts and deletes only, in one Commit call
//
// Ops: get KEY | put KEY VALUE | del KEY | incr KEY DELTA (read the integer at the
// transaction's snapshot, write the sum; absent: 0) | append KEY VALUE (read, write it with
// ",VALUE" added) | scan START END LIMIT ("-" as a bound:
// none). The ops run in order in one transaction, which then commits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/cert_command.h"

namespace CLI {
class App;
}  // namespace CLI

namespace micedb::cli {

struct TxnCommandOptions {
  std::string addr = "127.0.0.1:20161";
  int64_t timeout_ms = 10000;
  ClientSecurity security;
  uint64_t read_ts = 0;
  // One transaction per stdin line (ops as whitespace-separated words); one JSON object per
  // line on stdout: {"ok":true,"start_ts":..,"commit_ts":..,"reads":[...]} or
  // {"ok":false,"code":"Aborted","error":"..."}.
  bool stdin_lines = false;
  // The ops (put and del only) as one write-only transaction in a single call (a Commit with
  // mutations): no Begin, no open transaction at the node.
  bool oneshot = false;
  std::vector<std::string> ops;
};

CLI::App* AddTxnCommand(CLI::App* app, TxnCommandOptions* opts);

// Exit: 0 committed (or read); 1 a failure (one line on stderr; "aborted" for a conflict:
// retry); 2 bad usage. With --stdin: 0 once stdin ends, whatever the transactions' outcomes.
int RunTxn(const TxnCommandOptions& opts);

}  // namespace micedb::cli
