// `micedb start-local`: a cluster of separate node processes on one machine.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace micedb::cli {

// How many of start-local's nodes are the coordinators (the initial members); the rest join.
inline constexpr int kLocalCoordinators = 3;

struct LocalClusterOptions {
  int nodes = 3;
  std::string data_dir = "./data/local";
  std::string host = "127.0.0.1";
  int port_offset = 0;  // added to every port below, to run several clusters side by side
  // Certificates for every node (docs/security.md); then each node also serves Redis over
  // TLS on port 6389+i. Empty: insecure, which the nodes allow on loopback only.
  std::string certs_dir;
  bool insecure = false;          // passed to every node
  std::string store_down_time;    // passed to every node when set (--store-down-time)
  std::string region_split_size;  // likewise (--region-split-size)
  std::string region_split_keys;  // likewise (--region-split-keys)
  std::string region_merge_size;  // likewise (--region-merge-size)
  std::string region_merge_idle;  // likewise (--region-merge-idle)
  bool no_region_merge = false;   // passes --no-region-merge
};

// Node i (1-based) listens on (port_offset plus) peer port 20160+i, Redis 6379+i, PostgreSQL 5432+i
// and HTTP 8079+i, with data in <data_dir>/node<i>. Starts every node as a child process of
// `self_exe`, then serves until SIGINT or SIGTERM and stops every node still running. A node
// that ends on its own is reported on stderr with the command that starts it again; the others
// keep serving. Returns 0 when stopped by a signal, 2 on bad options, 1 when every node has
// ended on its own.
int RunLocalCluster(const LocalClusterOptions& opts, const char* self_exe);

// The command line of node `node` (1-based): `exe` (an absolute path), `start` and its flags.
// The data and certificate directories are made absolute, so that the same line, pasted into a
// shell anywhere, starts the same node on the same data.
std::vector<std::string> LocalNodeArgs(const LocalClusterOptions& opts, int node,
                                       const std::string& exe);

// `arg` as one word for a POSIX shell: as is when no shell gives any of its characters a
// meaning, else in single quotes (a quote inside becomes '\'').
std::string ShellQuote(std::string_view arg);

// The words, each ShellQuote'd, joined by spaces: a line to paste into a shell.
std::string ShellCommand(const std::vector<std::string>& args);

// How a process ended, from its waitpid() status: "exit code 3", "signal SIGKILL", or
// "signal SIGSEGV (core dumped)".
std::string DescribeWaitStatus(int wait_status);

// A node of start-local that ended on its own.
struct NodeEnd {
  int node = 0;
  pid_t pid = 0;
  int wait_status = 0;
  std::chrono::steady_clock::duration uptime{};  // from spawn to the reaping of its status
  std::vector<std::string> args;                 // the command line it was started with
  int running = 0;                               // nodes still running after it
  int nodes = 0;                                 // nodes start-local started
};

// A node that ends within this time of its spawn failed to start (port taken, bad flag...).
inline constexpr std::chrono::seconds kStartupFailureWindow{2};

// What start-local prints to stderr about `end`: which node, its pid, how it ended, how many
// still run, and on a line of its own, after "  restart: ", the command that starts it again.
// Every line ends with '\n'.
std::string DescribeNodeEnd(const NodeEnd& end);

}  // namespace micedb::cli
