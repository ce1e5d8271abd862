#include "cli/local_cluster.h"

#include "cli/start_options.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace micedb::cli {
namespace {

struct Child {
  int id;
  pid_t pid;
  std::vector<std::string> args;
  std::chrono::steady_clock::time_point started;
  bool exited = false;
};

pid_t Spawn(const std::vector<std::string>& args, const sigset_t& old_mask) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: a node must not outlive this supervisor, even when it is killed with -9. The
  // supervisor may have died before prctl, in which case no signal will come.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  std::fprintf(stderr, "micedb: error: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

std::string Absolute(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

// Sends SIGTERM to every child still running, waits up to 10 s for each, then SIGKILLs.
void StopAll(std::vector<Child>* children) {
  for (const auto& c : *children) {
    if (!c.exited) kill(c.pid, SIGTERM);
  }
  // Give nodes time to stop cleanly, then insist.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& c : *children) {
    bool killed = false;
    while (!c.exited) {
      int status = 0;
      pid_t r = waitpid(c.pid, &status, WNOHANG);
      if (r == c.pid || (r < 0 && errno == ECHILD)) {
        c.exited = true;
        continue;
      }
      if (!killed && std::chrono::steady_clock::now() > deadline) {
        kill(c.pid, SIGKILL);
        killed = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace

std::vector<std::string> LocalNodeArgs(const LocalClusterOptions& o, int i,
                                       const std::string& exe) {
  // Nodes 1-3 (or all, when fewer) start the cluster and are its coordinators; the others
  // join it through them (docs/coordinator.md).
  const int initial = std::min(o.nodes, kLocalCoordinators);
  std::string peers, join;
  for (int j = 1; j <= initial; ++j) {
    peers += fmt::format("{}{}={}:{}", j == 1 ? "" : ",", j, o.host, 20160 + o.port_offset + j);
    join += fmt::format("{}{}:{}", j == 1 ? "" : ",", o.host, 20160 + o.port_offset + j);
  }
  std::vector<std::string> args = {
      exe,
      "start",
      "--node-id",
      std::to_string(i),
      "--data-dir",
      Absolute((std::filesystem::path(o.data_dir) / fmt::format("node{}", i)).string()),
      "--listen-peer",
      fmt::format("{}:{}", o.host, 20160 + o.port_offset + i),
      "--listen-redis",
      fmt::format("{}:{}", o.host, 6379 + o.port_offset + i),
      "--listen-pg",
      fmt::format("{}:{}", o.host, 5432 + o.port_offset + i),
      "--listen-http",
      fmt::format("{}:{}", o.host, 8079 + o.port_offset + i),
      i <= initial ? "--initial-peers" : "--join",
      i <= initial ? peers : join};
  if (!o.certs_dir.empty()) {
    args.insert(args.end(), {"--certs-dir", Absolute(o.certs_dir), "--listen-redis-tls",
                             fmt::format("{}:{}", o.host, 6389 + o.port_offset + i)});
  }
  if (o.insecure) args.emplace_back("--insecure");
  if (!o.store_down_time.empty()) {
    args.insert(args.end(), {"--store-down-time", o.store_down_time});
  }
  if (!o.region_split_size.empty()) {
    args.insert(args.end(), {"--region-split-size", o.region_split_size});
  }
  if (!o.region_split_keys.empty()) {
    args.insert(args.end(), {"--region-split-keys", o.region_split_keys});
  }
  if (!o.region_merge_size.empty()) {
    args.insert(args.end(), {"--region-merge-size", o.region_merge_size});
  }
  if (!o.region_merge_idle.empty()) {
    args.insert(args.end(), {"--region-merge-idle", o.region_merge_idle});
  }
  if (o.no_region_merge) args.emplace_back("--no-region-merge");
  return args;
}

std::string ShellQuote(std::string_view arg) {
  auto plain = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("@%+=:,./-_").find(c) != std::string_view::npos;
  };
  // zsh expands a word that starts with '=' into a command's path.
  if (!arg.empty() && arg[0] != '=' && std::all_of(arg.begin(), arg.end(), plain)) {
    return std::string(arg);
  }
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string ShellCommand(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    out += ShellQuote(a);
  }
  return out;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exit code {}", WEXITSTATUS(wait_status));
  if (!WIFSIGNALED(wait_status)) return fmt::format("wait status {:#x}", wait_status);
  int sig = WTERMSIG(wait_status);
  const char* abbrev = sigabbrev_np(sig);  // "KILL"; null for real-time and unknown signals
  std::string out =
      abbrev != nullptr ? fmt::format("signal SIG{}", abbrev) : fmt::format("signal {}", sig);
  if (WCOREDUMP(wait_status)) out += " (core dumped)";
  return out;
}

std::string DescribeNodeEnd(const NodeEnd& e) {
  std::string how = DescribeWaitStatus(e.wait_status);
  std::string what;
  if (e.uptime < kStartupFailureWindow) {
    what = fmt::format("failed to start: {} (its error is above)", how);
  } else if (WIFEXITED(e.wait_status)) {
    what = fmt::format("exited: {}", how);
  } else {
    what = fmt::format("died: {}", how);
  }
  std::string out = fmt::format("micedb: node {} (pid {}) {}; {} of {} node(s) still running\n",
                                e.node, e.pid, what, e.running, e.nodes);
  if (e.running > 0 && 2 * e.running <= e.nodes) {
    out += fmt::format(
        "  Without a majority of the {} nodes the cluster cannot serve until enough are "
        "restarted.\n",
        e.nodes);
  }
  // The node writes its log to this process's stderr; it has no file of its own to point at.
  out += fmt::format("  restart: {}\n", ShellCommand(e.args));
  if (e.running > 0) {
    out +=
        "  (run it in another terminal: the node rejoins with its data; Ctrl-C here does not "
        "stop it)\n";
  }
  return out;
}

int RunLocalCluster(const LocalClusterOptions& opts, const char* self_exe) {
  if (opts.port_offset < 0 || opts.port_offset > 30000) {
    std::fprintf(stderr, "micedb: error: --port-offset must be between 0 and 30000\n");
    return 2;
  }
  if (opts.nodes < 1 || opts.nodes > 9) {
    std::fprintf(stderr, "micedb: error: --nodes must be between 1 and 9, not %d\n", opts.nodes);
    return 2;
  }
  if (!opts.store_down_time.empty()) {
    if (auto down = ParseDuration(opts.store_down_time); !down.ok() || *down < 1000) {
      std::fprintf(stderr, "micedb: error: --store-down-time: %s\n",
                   down.ok() ? "at least 1s" : std::string(down.status().message()).c_str());
      return 2;
    }
  }
  if (!opts.region_split_size.empty()) {
    if (auto size = ParseSize(opts.region_split_size); !size.ok() || *size < 1024) {
      std::fprintf(stderr, "micedb: error: --region-split-size: %s\n",
                   size.ok() ? "at least 1KiB" : std::string(size.status().message()).c_str());
      return 2;
    }
  }
  if (!opts.region_split_keys.empty()) {
    uint64_t n = 0;
    auto [ptr, ec] =
        std::from_chars(opts.region_split_keys.data(),
                        opts.region_split_keys.data() + opts.region_split_keys.size(), n);
    if (ec != std::errc() || ptr != opts.region_split_keys.data() + opts.region_split_keys.size() ||
        n < 16) {
      std::fprintf(stderr, "micedb: error: --region-split-keys: a number of keys, at least 16\n");
      return 2;
    }
  }
  if (!opts.region_merge_size.empty() && !ParseSize(opts.region_merge_size).ok()) {
    std::fprintf(stderr, "micedb: error: --region-merge-size: %s\n",
                 std::string(ParseSize(opts.region_merge_size).status().message()).c_str());
    return 2;
  }
  if (!opts.region_merge_idle.empty()) {
    if (auto idle = ParseDuration(opts.region_merge_idle); !idle.ok() || *idle < 1000) {
      std::fprintf(stderr, "micedb: error: --region-merge-idle: %s\n",
                   idle.ok() ? "at least 1s" : std::string(idle.status().message()).c_str());
      return 2;
    }
  }
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  (void)self_exe;

  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &stop_signals, &old_mask);

  std::vector<Child> children;
  for (int i = 1; i <= opts.nodes; ++i) {
    Child c{.id = i,
            .pid = 0,
            .args = LocalNodeArgs(opts, i, exe),
            .started = std::chrono::steady_clock::now()};
    c.pid = Spawn(c.args, old_mask);
    children.push_back(std::move(c));
  }
  std::printf("micedb local cluster: %d node(s), data under %s\n", opts.nodes,
              opts.data_dir.c_str());
  for (const auto& c : children) {
    std::printf("  node %d  pid %-7d redis-cli -h %s -p %d    http://%s:%d/metrics\n", c.id, c.pid,
                opts.host.c_str(), 6379 + opts.port_offset + c.id, opts.host.c_str(),
                8079 + opts.port_offset + c.id);
  }
  if (!opts.certs_dir.empty()) {
    std::printf(
        "Redis over TLS: redis-cli --tls --cacert %1$s/ca.crt --cert %1$s/client.root.crt "
        "--key %1$s/client.root.key -h %2$s -p %3$d\n",
        opts.certs_dir.c_str(), opts.host.c_str(), 6390 + opts.port_offset);
    std::printf("Security: mutual TLS between nodes and for gRPC clients (--certs-dir %s)\n",
                opts.certs_dir.c_str());
    std::printf(
        "Any node answers any command. Cluster state: %s status --certs-dir %s --via %s:%d\n",
        exe.c_str(), opts.certs_dir.c_str(), opts.host.c_str(), 20161 + opts.port_offset);
  } else {
    std::printf("Security: insecure, no TLS or authentication between nodes (loopback only)\n");
    std::printf("Any node answers any command. Cluster state: %s status --via %s:%d\n", exe.c_str(),
                opts.host.c_str(), 20161 + opts.port_offset);
  }
  std::printf("Ctrl-C stops every node.\n");
  std::fflush(stdout);

  // A node that ends on its own is reported and left down: the others go on serving, which
  // is what a user killing a node to watch the cluster fail over expects to see.
  int running = opts.nodes;
  bool stopping = false;
  while (!stopping) {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig != SIGCHLD) {
      stopping = true;
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& c : children) {
        if (c.pid != pid || c.exited) continue;
        c.exited = true;
        --running;
        NodeEnd end{.node = c.id,
                    .pid = pid,
                    .wait_status = status,
                    .uptime = std::chrono::steady_clock::now() - c.started,
                    .args = c.args,
                    .running = running,
                    .nodes = opts.nodes};
        std::fputs(DescribeNodeEnd(end).c_str(), stderr);
      }
    }
    if (running == 0) {
      std::fprintf(stderr,
                   "micedb: every node has stopped; start-local exits (run it again to start "
                   "them on their data)\n");
      return 1;
    }
  }
  StopAll(&children);
  std::printf("micedb local cluster stopped\n");
  return 0;
}

}  // namespace micedb::cli
