// `micedb start-local`: a cluster of separate node processes on one machine.
#pragma once

#include <string>

namespace micedb::cli {

struct LocalClusterOptions {
  int nodes = 3;
  std::string data_dir = "./data/local";
  std::string host = "127.0.0.1";
  int port_offset = 0;  // added to every port below, to run several clusters side by side
  // Certificates for every node (docs/security.md); then each node also serves Redis over
  // TLS on port 6389+i. Empty: insecure, which the nodes allow on loopback only.
  std::string certs_dir;
  bool insecure = false;  // passed to every node
};

// Node i (1-based) listens on (port_offset plus) peer port 20160+i, Redis 6379+i, PostgreSQL 5432+i
// and HTTP 8079+i, with data in <data_dir>/node<i>. Starts every node as a child process of
// `self_exe`, waits for SIGINT/SIGTERM (or a node exiting), then stops every node it started.
// Returns 0 on a clean stop, 2 on bad options, 1 when a node failed.
int RunLocalCluster(const LocalClusterOptions& opts, const char* self_exe);

}  // namespace micedb::cli
