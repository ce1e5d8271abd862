// `micedb kv get|put|del|scan|cas`: the key-value commands, over the gRPC KV API
// (docs/kv-grpc.md) of any node, through kv::KvClient.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/cert_command.h"

namespace CLI {
class App;
}  // namespace CLI

namespace micedb::cli {

struct KvCommandOptions {
  std::string op;                        // the subcommand given: get, put, del, scan or cas
  std::string addr = "127.0.0.1:20161";  // a node's peer address
  int64_t timeout_ms = 10000;
  ClientSecurity security;
  bool stale = false;                    // get, scan: read the answering replica, possibly stale
  std::string key;                       // get, put, cas
  std::string value;                     // put
  int64_t ttl_ms = 0;                    // put
  std::vector<std::string> keys;         // del
  std::string start;                     // scan
  std::string end;                       // scan
  uint64_t limit = 0;                    // scan
  bool keys_only = false;                // scan
  std::optional<std::string> expect;     // cas
  bool expect_absent = false;            // cas
  std::optional<std::string> new_value;  // cas
  bool delete_key = false;               // cas
};

// Adds `kv` and its subcommands to `app`; parsing fills `*opts`, which must outlive `app`.
// Returns the `kv` command.
CLI::App* AddKvCommand(CLI::App* app, KvCommandOptions* opts);

// Runs the parsed command and prints its outcome on stdout: the value (get), OK (put, and cas
// when it swapped), the number of keys deleted (del), "key<TAB>value" lines (scan). Bytes are
// printed as stored. Returns 0 on success; 1 when get finds no key ("(nil)") or cas does not
// swap ("CONFLICT" and the current value), or for a failure, reported as one line on stderr;
// 2 for bad usage, including input the server refuses as invalid.
int RunKv(const KvCommandOptions& opts);

}  // namespace micedb::cli
