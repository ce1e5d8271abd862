// Operator commands that talk to a running cluster over gRPC: `micedb node ...` (membership,
// leader transfer) and `micedb status`.
#pragma once

#include <cstdint>
#include <string>

#include "cli/cert_command.h"

namespace micedb::cli {

struct AdminOptions {
  std::string op;                 // add | promote | remove | transfer-leader | split | merge
  std::string split_key;          // split: the user key the new region starts at
  uint64_t target_region_id = 0;  // merge: the neighbour that takes region_id's keys
  uint64_t node_id = 0;
  uint64_t region_id = 1;  // 2: the coordinator's region (docs/coordinator.md)
  // Schedule the change as a coordinator operator instead of sending it to the leader now.
  bool through_coordinator = false;
  std::string peer_addr;                // for add: where the new node listens for peers
  std::string via = "127.0.0.1:20161";  // any node's peer address
  int timeout_s = 15;
  // decommission: how long to wait (showing progress) for the store to be empty; 0: do not
  // wait.
  int wait_s = 600;
  ClientSecurity security;
};

// Sends the change to the region leader (following "leader is ..." hints). Prints one line;
// returns 0 on success, 1 when the cluster refused or could not be reached, 2 for bad flags.
int RunAdmin(const AdminOptions& opts);

// `micedb node decommission --id N`: marks the store offline, so the coordinator moves every
// replica off it and then marks it a tombstone; shows progress and an estimate of the time
// left while it waits. `recommission` cancels a decommission that has not finished.
int RunDecommission(const AdminOptions& opts);

struct StatusOptions {
  std::string via = "127.0.0.1:20161";
  bool with_hash = false;
  bool json = false;
  ClientSecurity security;
};

// Prints every node of the cluster: role, term, leader, commit/applied and lag.
int RunStatus(const StatusOptions& opts);

}  // namespace micedb::cli
