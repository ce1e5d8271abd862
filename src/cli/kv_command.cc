#include "cli/kv_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string_view>

#include <fmt/format.h>

#include "kv/grpc/kv_grpc.h"

namespace micedb::cli {

namespace {

void AddConnectionFlags(CLI::App* cmd, KvCommandOptions* o) {
  cmd->add_option("--addr", o->addr, "Peer address (host:port) of any node")->capture_default_str();
  cmd->add_option("--timeout-ms", o->timeout_ms, "Give up after this long, retries included")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  AddClientSecurityFlags(cmd, &o->security);
}

CLI::App* AddOp(CLI::App* kv, KvCommandOptions* o, const std::string& name,
                const std::string& help) {
  CLI::App* cmd = kv->add_subcommand(name, help);
  cmd->callback([o, name] { o->op = name; });
  AddConnectionFlags(cmd, o);
  return cmd;
}

void PrintBytes(std::string_view bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fputc('\n', stdout);
}

// One line on stderr; exit 2 for input the server refused, 1 otherwise.
int Fail(const KvCommandOptions& o, const Status& st) {
  std::string msg = st.ToString();
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  std::fprintf(stderr, "micedb: error: kv %s via %s: %s\n", o.op.c_str(), o.addr.c_str(),
               msg.c_str());
  return st.IsInvalidArgument() ? 2 : 1;
}

int Usage(const std::string& what) {
  std::fprintf(stderr, "micedb: error: %s\n", what.c_str());
  return 2;
}

}  // namespace

CLI::App* AddKvCommand(CLI::App* app, KvCommandOptions* o) {
  CLI::App* kv = app->add_subcommand("kv", "Read and write keys over the gRPC KV API");
  kv->require_subcommand(1);

  CLI::App* get = AddOp(kv, o, "get", "Print the value of a key, or (nil)");
  get->add_option("key", o->key, "The key")->required();
  get->add_flag("--stale", o->stale, "Read the answering replica; may miss recent writes");

  CLI::App* put = AddOp(kv, o, "put", "Set a key to a value");
  put->add_option("key", o->key, "The key")->required();
  put->add_option("value", o->value, "The value")->required();
  put->add_option("--ttl-ms", o->ttl_ms, "Expire the key after this many milliseconds")
      ->check(CLI::NonNegativeNumber);

  CLI::App* del = AddOp(kv, o, "del", "Delete keys and print how many existed");
  del->add_option("keys", o->keys, "The keys")->required();

  CLI::App* scan = AddOp(kv, o, "scan", "Print key<TAB>value lines in key order");
  scan->add_option("--start", o->start, "First key (inclusive)");
  scan->add_option("--end", o->end, "Last key (exclusive); empty: to the end");
  scan->add_option("--limit", o->limit, "Most pairs (0: the server's bound, 100000)");
  scan->add_flag("--keys-only", o->keys_only, "Print keys only");
  scan->add_flag("--stale", o->stale, "Read the answering replica; may miss recent writes");

  CLI::App* cas = AddOp(kv, o, "cas", "Compare and swap: set a key only if it holds a value");
  cas->add_option("key", o->key, "The key")->required();
  CLI::Option* expect = cas->add_option_function<std::string>(
      "--expect", [o](const std::string& v) { o->expect = v; }, "The value the key must hold");
  CLI::Option* absent =
      cas->add_flag("--expect-absent", o->expect_absent, "The key must not exist instead");
  expect->excludes(absent);
  CLI::Option* new_value = cas->add_option_function<std::string>(
      "--new", [o](const std::string& v) { o->new_value = v; }, "The value to set");
  CLI::Option* remove = cas->add_flag("--delete", o->delete_key, "Delete the key instead");
  new_value->excludes(remove);
  return kv;
}

int RunKv(const KvCommandOptions& o) {
  auto creds = ClientCredentials(o.security);
  if (!creds.ok()) {
    std::fprintf(stderr, "micedb: error: %s\n", std::string(creds.status().message()).c_str());
    return 2;
  }
  kv::KvClient client(o.addr,
                      kv::KvClientOptions{.timeout = std::chrono::milliseconds(o.timeout_ms),
                                          .credentials = *creds});
  const kv::ReadMode mode = o.stale ? kv::ReadMode::kLocalStale : kv::ReadMode::kLinearizable;

  if (o.op == "get") {
    auto value = client.Get(o.key, mode);
    if (!value.ok()) {
      return Fail(o, value.status());
    }
    if (!value->has_value()) {
      std::printf("(nil)\n");
      return 1;
    }
    PrintBytes(**value);
    return 0;
  }
  if (o.op == "put") {
    Status st = client.Put(o.key, o.value, o.ttl_ms);
    if (!st.ok()) {
      return Fail(o, st);
    }
    std::printf("OK\n");
    return 0;
  }
  if (o.op == "del") {
    auto deleted = client.Delete(o.keys);
    if (!deleted.ok()) {
      return Fail(o, deleted.status());
    }
    std::printf("%llu\n", static_cast<unsigned long long>(*deleted));
    return 0;
  }
  if (o.op == "scan") {
    kv::KvScanOptions scan{
        .start = o.start, .end = o.end, .limit = o.limit, .keys_only = o.keys_only, .mode = mode};
    Status st = client.Scan(scan, [&o](kv::KvPair p) {
      std::fwrite(p.key.data(), 1, p.key.size(), stdout);
      if (!o.keys_only) {
        std::fputc('\t', stdout);
        std::fwrite(p.value.data(), 1, p.value.size(), stdout);
      }
      std::fputc('\n', stdout);
    });
    if (!st.ok()) {
      return Fail(o, st);
    }
    return 0;
  }
  if (o.op == "cas") {
    if (o.expect.has_value() == o.expect_absent) {
      return Usage("kv cas needs exactly one of --expect VALUE and --expect-absent");
    }
    if (o.new_value.has_value() == o.delete_key) {
      return Usage("kv cas needs exactly one of --new VALUE and --delete");
    }
    auto r = client.CompareAndSwap({.key = o.key, .expected = o.expect, .new_value = o.new_value});
    if (!r.ok()) {
      return Fail(o, r.status());
    }
    if (r->swapped) {
      std::printf("OK\n");
      return 0;
    }
    std::printf("CONFLICT\n");
    if (r->previous.has_value()) {
      PrintBytes(*r->previous);
    } else {
      std::printf("(nil)\n");
    }
    return 1;
  }
  return Usage("kv needs a command: get, put, del, scan or cas");
}

}  // namespace micedb::cli
