#include "cli/local_cluster.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
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
  bool exited = false;
};

std::vector<std::string> NodeArgs(const LocalClusterOptions& o, int i, const std::string& exe) {
  std::string peers;
  for (int j = 1; j <= o.nodes; ++j) {
    peers += fmt::format("{}{}={}:{}", j == 1 ? "" : ",", j, o.host, 20160 + o.port_offset + j);
  }
  std::vector<std::string> args = {
      exe,
      "start",
      "--node-id",
      std::to_string(i),
      "--data-dir",
      (std::filesystem::path(o.data_dir) / fmt::format("node{}", i)).string(),
      "--listen-peer",
      fmt::format("{}:{}", o.host, 20160 + o.port_offset + i),
      "--listen-redis",
      fmt::format("{}:{}", o.host, 6379 + o.port_offset + i),
      "--listen-pg",
      fmt::format("{}:{}", o.host, 5432 + o.port_offset + i),
      "--listen-http",
      fmt::format("{}:{}", o.host, 8079 + o.port_offset + i),
      "--initial-peers",
      peers};
  if (!o.certs_dir.empty()) {
    args.insert(args.end(), {"--certs-dir", o.certs_dir, "--listen-redis-tls",
                             fmt::format("{}:{}", o.host, 6389 + o.port_offset + i)});
  }
  if (o.insecure) args.emplace_back("--insecure");
  return args;
}

pid_t Spawn(const std::vector<std::string>& args, const sigset_t& old_mask) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: a node must not outlive this supervisor, even when it is killed with -9.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  std::fprintf(stderr, "micedb: error: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

}  // namespace

int RunLocalCluster(const LocalClusterOptions& opts, const char* self_exe) {
  if (opts.port_offset < 0 || opts.port_offset > 30000) {
    std::fprintf(stderr, "micedb: error: --port-offset must be between 0 and 30000\n");
    return 2;
  }
  if (opts.nodes < 1 || opts.nodes > 9) {
    std::fprintf(stderr, "micedb: error: --nodes must be between 1 and 9, not %d\n", opts.nodes);
    return 2;
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
    children.push_back(Child{i, Spawn(NodeArgs(opts, i, exe), old_mask)});
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

  int rc = 0;
  bool stopping = false;
  while (!stopping) {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig == SIGCHLD) {
      int status = 0;
      pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (auto& c : children) {
          if (c.pid != pid) continue;
          c.exited = true;
          std::fprintf(stderr, "micedb: node %d (pid %d) exited (%s %d); stopping the cluster\n",
                       c.id, pid, WIFEXITED(status) ? "code" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
          rc = 1;
          stopping = true;
        }
      }
    } else {
      stopping = true;
    }
  }
  for (const auto& c : children) {
    if (!c.exited) kill(c.pid, SIGTERM);
  }
  // Give nodes time to stop cleanly, then insist.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& c : children) {
    while (!c.exited) {
      int status = 0;
      pid_t r = waitpid(c.pid, &status, WNOHANG);
      if (r == c.pid || (r < 0 && errno == ECHILD)) {
        c.exited = true;
      } else if (std::chrono::steady_clock::now() > deadline) {
        kill(c.pid, SIGKILL);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  std::printf("micedb local cluster stopped\n");
  return rc;
}

}  // namespace micedb::cli
