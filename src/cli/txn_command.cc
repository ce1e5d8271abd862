#include "cli/txn_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "txn/grpc/client.h"

namespace micedb::cli {

namespace {

struct Op {
  enum class Kind { kGet, kPut, kDel, kScan, kIncr, kAppend };
  Kind kind = Kind::kGet;
  std::string key, value;  // get, put, del; scan: start (key) and end (value)
  uint32_t limit = 0;
  int64_t delta = 0;  // incr
};

std::string Bound(const std::string& word) { return word == "-" ? std::string() : word; }

Result<std::vector<Op>> Parse(const std::vector<std::string>& words) {
  std::vector<Op> ops;
  for (size_t i = 0; i < words.size();) {
    const std::string& w = words[i];
    auto need = [&](size_t n) -> Status {
      if (i + n >= words.size()) {
        return Status::InvalidArgument(fmt::format("'{}' needs {} argument(s)", w, n));
      }
      return Status::OK();
    };
    Op op;
    if (w == "get" || w == "del") {
      MICEDB_RETURN_IF_ERROR(need(1));
      op.kind = w == "get" ? Op::Kind::kGet : Op::Kind::kDel;
      op.key = words[i + 1];
      i += 2;
    } else if (w == "put") {
      MICEDB_RETURN_IF_ERROR(need(2));
      op.kind = Op::Kind::kPut;
      op.key = words[i + 1];
      op.value = words[i + 2];
      i += 3;
    } else if (w == "append") {
      MICEDB_RETURN_IF_ERROR(need(2));
      op.kind = Op::Kind::kAppend;
      op.key = words[i + 1];
      op.value = words[i + 2];
      i += 3;
    } else if (w == "incr") {
      MICEDB_RETURN_IF_ERROR(need(2));
      op.kind = Op::Kind::kIncr;
      op.key = words[i + 1];
      const std::string& d = words[i + 2];
      auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), op.delta);
      if (ec != std::errc() || p != d.data() + d.size()) {
        return Status::InvalidArgument(fmt::format("incr delta '{}' is not an integer", d));
      }
      i += 3;
    } else if (w == "scan") {
      MICEDB_RETURN_IF_ERROR(need(3));
      op.kind = Op::Kind::kScan;
      op.key = Bound(words[i + 1]);
      op.value = Bound(words[i + 2]);
      uint64_t limit = 0;
      const std::string& l = words[i + 3];
      auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
      if (ec != std::errc() || p != l.data() + l.size() || limit == 0 || limit > 100000) {
        return Status::InvalidArgument(
            fmt::format("scan limit '{}' is not a number in 1..100000", l));
      }
      op.limit = static_cast<uint32_t>(limit);
      i += 4;
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown op '{}' (ops: get KEY, put KEY VALUE, del KEY, incr KEY DELTA, "
                      "append KEY VALUE, scan START END LIMIT)",
                      w));
    }
    ops.push_back(std::move(op));
  }
  if (ops.empty()) return Status::InvalidArgument("no ops given");
  return ops;
}

std::string Json(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

struct Outcome {
  Status status;
  uint64_t start_ts = 0;
  uint64_t commit_ts = 0;
  bool wrote = false;
  std::vector<std::string> human;  // lines for people
  std::vector<std::string> json;   // the reads, as JSON values
};

Outcome RunOne(txn::TxnGrpcClient& client, uint64_t read_ts, const std::vector<Op>& ops) {
  Outcome out;
  auto h = client.Begin(read_ts);
  if (!h.ok()) {
    out.status = h.status();
    return out;
  }
  out.start_ts = h->start_ts;
  auto fail = [&](Status st) {
    client.Rollback(h->id).IgnoreError();
    out.status = std::move(st);
    return out;
  };
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::Kind::kGet: {
        auto v = client.Get(h->id, op.key);
        if (!v.ok()) return fail(v.status());
        out.human.push_back(v->has_value() ? **v : "(nil)");
        out.json.push_back(fmt::format("{{\"op\":\"get\",\"key\":{},\"value\":{}}}", Json(op.key),
                                       v->has_value() ? Json(**v) : "null"));
        break;
      }
      case Op::Kind::kPut:
        if (Status st = client.Put(h->id, op.key, op.value); !st.ok()) return fail(st);
        out.wrote = true;
        break;
      case Op::Kind::kDel:
        if (Status st = client.Delete(h->id, op.key); !st.ok()) return fail(st);
        out.wrote = true;
        break;
      case Op::Kind::kIncr: {
        // Read at the transaction's snapshot, write the sum: a conflicting writer aborts one.
        auto v = client.Get(h->id, op.key);
        if (!v.ok()) return fail(v.status());
        int64_t n = 0;
        if (v->has_value()) {
          const std::string& s = **v;
          auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
          if (ec != std::errc() || p != s.data() + s.size()) {
            return fail(Status::InvalidArgument(
                fmt::format("incr: the value of '{}' is not an integer", op.key)));
          }
        }
        const std::string sum = std::to_string(n + op.delta);
        if (Status st = client.Put(h->id, op.key, sum); !st.ok()) return fail(st);
        out.wrote = true;
        out.human.push_back(sum);
        out.json.push_back(
            fmt::format("{{\"op\":\"incr\",\"key\":{},\"value\":{}}}", Json(op.key), Json(sum)));
        break;
      }
      case Op::Kind::kAppend: {
        // Read at the transaction's snapshot, write it with ",VALUE" added (or VALUE alone).
        auto v = client.Get(h->id, op.key);
        if (!v.ok()) return fail(v.status());
        const std::string joined = v->has_value() ? **v + "," + op.value : op.value;
        if (Status st = client.Put(h->id, op.key, joined); !st.ok()) return fail(st);
        out.wrote = true;
        out.human.push_back(joined);
        out.json.push_back(fmt::format("{{\"op\":\"append\",\"key\":{},\"value\":{}}}",
                                       Json(op.key), Json(joined)));
        break;
      }
      case Op::Kind::kScan: {
        auto pairs = client.Scan(h->id, op.key, op.value, op.limit);
        if (!pairs.ok()) return fail(pairs.status());
        std::string arr;
        for (auto& [k, v] : *pairs) {
          out.human.push_back(k + "\t" + v);
          if (!arr.empty()) arr += ",";
          arr += fmt::format("[{},{}]", Json(k), Json(v));
        }
        out.json.push_back(fmt::format("{{\"op\":\"scan\",\"pairs\":[{}]}}", arr));
        break;
      }
    }
  }
  auto ts = client.Commit(h->id);
  if (!ts.ok()) {
    out.status = ts.status();
    return out;
  }
  out.commit_ts = *ts;
  return out;
}

// With --oneshot every op must be a blind write: the one call carries no reads.
Status CheckOneShot(const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    if (op.kind == Op::Kind::kPut || op.kind == Op::Kind::kDel) continue;
    return Status::InvalidArgument(
        "--oneshot takes only put and del (they go in one call, which reads nothing); run "
        "get, scan, incr and append without --oneshot");
  }
  return Status::OK();
}

Outcome RunOneShot(txn::TxnGrpcClient& client, const std::vector<Op>& ops) {
  Outcome out;
  if (Status st = CheckOneShot(ops); !st.ok()) {
    out.status = std::move(st);
    return out;
  }
  std::vector<txn::TxnGrpcClient::Mutation> mutations;
  mutations.reserve(ops.size());
  for (const Op& op : ops) {
    mutations.push_back({op.kind == Op::Kind::kPut ? txn::TxnGrpcClient::Mutation::Op::kPut
                                                   : txn::TxnGrpcClient::Mutation::Op::kDelete,
                         op.key, op.value});
  }
  auto ts = client.Write(mutations);
  if (!ts.ok()) {
    out.status = ts.status();
    return out;
  }
  out.commit_ts = *ts;
  out.wrote = true;
  return out;
}

}  // namespace

CLI::App* AddTxnCommand(CLI::App* app, TxnCommandOptions* o) {
  CLI::App* cmd = app->add_subcommand(
      "txn",
      "Run one transaction over the gRPC transactional API: ops get KEY, put KEY VALUE, del KEY, "
      "incr KEY DELTA, append KEY VALUE, scan START END LIMIT ('-': no bound), in order, then "
      "commit");
  cmd->add_option("--addr", o->addr, "Peer address (host:port) of any node")->capture_default_str();
  cmd->add_option("--timeout-ms", o->timeout_ms, "Give up on a call after this long")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--read-ts", o->read_ts, "Read at this earlier timestamp (read-only)");
  cmd->add_flag("--stdin", o->stdin_lines,
                "One transaction per stdin line; one JSON result per line on stdout");
  cmd->add_flag("--oneshot", o->oneshot,
                "Send the ops (put and del only) as one write-only transaction in a single call");
  cmd->add_option("ops", o->ops, "The ops");
  AddClientSecurityFlags(cmd, &o->security);
  return cmd;
}

int RunTxn(const TxnCommandOptions& o) {
  auto creds = ClientCredentials(o.security);
  if (!creds.ok()) {
    std::fprintf(stderr, "micedb: error: %s\n", std::string(creds.status().message()).c_str());
    return 2;
  }
  if (o.oneshot && o.read_ts != 0) {
    std::fprintf(stderr,
                 "micedb: error: txn: --oneshot writes and --read-ts only reads; not both\n");
    return 2;
  }
  txn::TxnGrpcClient client(
      o.addr, {.timeout = std::chrono::milliseconds(o.timeout_ms), .credentials = *creds});
  auto run = [&](const std::vector<Op>& ops) {
    return o.oneshot ? RunOneShot(client, ops) : RunOne(client, o.read_ts, ops);
  };
  if (o.stdin_lines) {
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream in(line);
      std::vector<std::string> words;
      for (std::string w; in >> w;) words.push_back(w);
      if (words.empty()) continue;
      auto ops = Parse(words);
      Outcome r;
      if (!ops.ok()) {
        r.status = ops.status();
      } else {
        r = run(*ops);
      }
      if (r.status.ok()) {
        std::string reads;
        for (const auto& j : r.json) reads += (reads.empty() ? "" : ",") + j;
        std::printf("{\"ok\":true,\"start_ts\":%llu,\"commit_ts\":%llu,\"reads\":[%s]}\n",
                    static_cast<unsigned long long>(r.start_ts),
                    static_cast<unsigned long long>(r.commit_ts), reads.c_str());
      } else {
        std::printf("{\"ok\":false,\"code\":%s,\"start_ts\":%llu,\"error\":%s}\n",
                    Json(StatusCodeName(r.status.code())).c_str(),
                    static_cast<unsigned long long>(r.start_ts), Json(r.status.message()).c_str());
      }
      std::fflush(stdout);
    }
    return 0;
  }
  auto ops = Parse(o.ops);
  if (ops.ok() && o.oneshot) {
    if (Status st = CheckOneShot(*ops); !st.ok()) ops = st;
  }
  if (!ops.ok()) {
    std::fprintf(stderr, "micedb: error: txn: %s\n", std::string(ops.status().message()).c_str());
    return 2;
  }
  Outcome r = run(*ops);
  for (const auto& line : r.human) std::printf("%s\n", line.c_str());
  if (!r.status.ok()) {
    std::string msg(r.status.message());
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    const char* what = r.status.code() == StatusCode::kAborted ? "aborted" : "failed";
    std::fprintf(stderr, "micedb: error: txn %s via %s: %s\n", what, o.addr.c_str(), msg.c_str());
    return r.status.IsInvalidArgument() ? 2 : 1;
  }
  if (r.wrote) std::printf("COMMIT %llu\n", static_cast<unsigned long long>(r.commit_ts));
  return 0;
}

}  // namespace micedb::cli
