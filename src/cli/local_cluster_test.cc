#include "cli/local_cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace micedb::cli {
namespace {

// A wait status as waitpid() reports it, made by a real child.
int StatusOf(void (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(99);
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

TEST(ShellQuoteTest, LeavesPlainWordsAlone) {
  EXPECT_EQ(ShellQuote("/usr/bin/micedb"), "/usr/bin/micedb");
  EXPECT_EQ(ShellQuote("--listen-peer"), "--listen-peer");
  EXPECT_EQ(ShellQuote("1=127.0.0.1:20161,2=127.0.0.1:20162"),
            "1=127.0.0.1:20161,2=127.0.0.1:20162");
  EXPECT_EQ(ShellQuote("a_b@c%d+e"), "a_b@c%d+e");
}

TEST(ShellQuoteTest, QuotesWhatAShellWouldInterpret) {
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("/data/my cluster"), "'/data/my cluster'");
  EXPECT_EQ(ShellQuote("$HOME/*"), "'$HOME/*'");
  EXPECT_EQ(ShellQuote("~/x"), "'~/x'");
  EXPECT_EQ(ShellQuote("a;b|c&d"), "'a;b|c&d'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote("=ls"), "'=ls'");  // zsh would expand it
  EXPECT_EQ(ShellQuote("tab\there"), "'tab\there'");
}

TEST(ShellQuoteTest, CommandJoinsQuotedWords) {
  EXPECT_EQ(ShellCommand({"/bin/micedb", "start", "--data-dir", "/d/it's here"}),
            "/bin/micedb start --data-dir '/d/it'\\''s here'");
  EXPECT_EQ(ShellCommand({}), "");
}

TEST(DescribeWaitStatusTest, ExitCodesAndSignals) {
  EXPECT_EQ(DescribeWaitStatus(StatusOf([] { _exit(0); })), "exit code 0");
  EXPECT_EQ(DescribeWaitStatus(StatusOf([] { _exit(3); })), "exit code 3");
  EXPECT_EQ(DescribeWaitStatus(StatusOf([] { raise(SIGKILL); })), "signal SIGKILL");
  EXPECT_EQ(DescribeWaitStatus(StatusOf([] { raise(SIGTERM); })), "signal SIGTERM");
  EXPECT_EQ(DescribeWaitStatus(StatusOf([] { raise(SIGRTMIN + 1); })),
            "signal " + std::to_string(SIGRTMIN + 1));
}

TEST(LocalNodeArgsTest, AbsoluteDirectoriesAndEveryPort) {
  LocalClusterOptions o;
  o.nodes = 3;
  o.data_dir = "./data/../data/local";
  o.port_offset = 100;
  auto args = LocalNodeArgs(o, 2, "/opt/micedb");
  std::string cwd = std::filesystem::current_path().string();
  std::vector<std::string> want = {
      "/opt/micedb",     "start",
      "--node-id",       "2",
      "--data-dir",      cwd + "/data/local/node2",
      "--listen-peer",   "127.0.0.1:20262",
      "--listen-redis",  "127.0.0.1:6481",
      "--listen-pg",     "127.0.0.1:5534",
      "--listen-http",   "127.0.0.1:8181",
      "--initial-peers", "1=127.0.0.1:20261,2=127.0.0.1:20262,3=127.0.0.1:20263"};
  EXPECT_EQ(args, want);

  o.certs_dir = "certs";
  o.insecure = true;
  args = LocalNodeArgs(o, 1, "/opt/micedb");
  std::vector<std::string> tail(args.end() - 5, args.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"--certs-dir", cwd + "/certs", "--listen-redis-tls",
                                            "127.0.0.1:6490", "--insecure"}));
  o.store_down_time = "10s";
  args = LocalNodeArgs(o, 1, "/opt/micedb");
  EXPECT_EQ(std::vector<std::string>(args.end() - 2, args.end()),
            (std::vector<std::string>{"--store-down-time", "10s"}));
}

NodeEnd End(int wait_status, std::chrono::milliseconds uptime, int running) {
  NodeEnd e;
  e.node = 2;
  e.pid = 4242;
  e.wait_status = wait_status;
  e.uptime = uptime;
  e.args = {"/opt/micedb", "start", "--data-dir", "/my data/node2"};
  e.running = running;
  e.nodes = 3;
  return e;
}

TEST(DescribeNodeEndTest, NamesTheNodeHowItEndedAndTheRestartCommand) {
  int killed = StatusOf([] { raise(SIGKILL); });
  EXPECT_EQ(DescribeNodeEnd(End(killed, std::chrono::seconds(30), 2)),
            "micedb: node 2 (pid 4242) died: signal SIGKILL; 2 of 3 node(s) still running\n"
            "  restart: /opt/micedb start --data-dir '/my data/node2'\n"
            "  (run it in another terminal: the node rejoins with its data; Ctrl-C here does "
            "not stop it)\n");
}

TEST(DescribeNodeEndTest, ExitsAndStartupFailures) {
  int code1 = StatusOf([] { _exit(1); });
  std::string out = DescribeNodeEnd(End(code1, std::chrono::seconds(30), 2));
  EXPECT_EQ(out.substr(0, out.find('\n')),
            "micedb: node 2 (pid 4242) exited: exit code 1; 2 of 3 node(s) still running");

  int code2 = StatusOf([] { _exit(2); });
  out = DescribeNodeEnd(End(code2, std::chrono::milliseconds(300), 2));
  EXPECT_EQ(out.substr(0, out.find('\n')),
            "micedb: node 2 (pid 4242) failed to start: exit code 2 (its error is above); 2 of 3 "
            "node(s) still running");
  EXPECT_NE(out.find("\n  restart: /opt/micedb start"), std::string::npos);
}

TEST(DescribeNodeEndTest, SaysWhenTheRestHaveNoMajority) {
  int killed = StatusOf([] { raise(SIGKILL); });
  EXPECT_EQ(DescribeNodeEnd(End(killed, std::chrono::seconds(30), 2)).find("majority"),
            std::string::npos);
  EXPECT_NE(DescribeNodeEnd(End(killed, std::chrono::seconds(30), 1)).find("majority"),
            std::string::npos);
}

}  // namespace
}  // namespace micedb::cli
