// loadgen: one closed-loop load generator for MiceDB and Redis (RESP), etcd (v3 gRPC KV),
// MiceDB's raw gRPC API (micedb.kv.v1) and MiceDB's transactions (gRPC micedb.txn.v1).
//
//   loadgen run  --system resp --endpoints 127.0.0.1:6380 --workload read95 --clients 64 ...
//   loadgen load --system resp --endpoints 127.0.0.1:6380 --keys 1000000 --value-size 100
//   loadgen run  --system txn --endpoints 127.0.0.1:20161 --workload bank --clients 16 ...
//
// `run` measures: after --warmup seconds, every operation completing in the next --duration
// seconds is counted and its latency (from the moment the request was queued to the moment
// its reply was parsed) recorded; it prints throughput and percentiles, and appends one row to
// --csv. `load` writes keys 0..keys-1 once (MSET batches for RESP, one-shot Commits for txn) so
// that reads find values.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "driver.h"

namespace micedb::bench {
namespace {

struct Common {
  std::string system = "resp";
  std::string endpoints = "127.0.0.1:6379";
  int clients = 16;
  int connections = 0;
  int threads = 1;
  uint64_t keys = 10000;
  std::string dist = "uniform";
  double theta = 0.99;
  size_t value_size = 100;
  std::string key_prefix = "bench:";
  uint64_t seed = 1;
  int timeout_ms = 10000;
};

void AddCommon(CLI::App* app, Common& c) {
  app->add_option("--system", c.system,
                  "resp (MiceDB, Redis), etcd, kv (MiceDB's raw gRPC API, at peer ports) or txn "
                  "(MiceDB's transactions, at peer ports)")
      ->check(CLI::IsMember({"resp", "etcd", "kv", "txn"}))
      ->capture_default_str();
  app->add_option("--endpoints", c.endpoints, "host:port[,host:port...]; connections round-robin")
      ->capture_default_str();
  app->add_option("--clients", c.clients, "Concurrent clients, one request outstanding each")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app->add_option("--connections", c.connections,
                  "Connections the clients share (0: resp one per client, etcd, kv and txn "
                  "min(clients, 8))")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app->add_option("--threads", c.threads, "I/O threads of the load generator")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app->add_option("--keys", c.keys, "Key space: indexes 0..keys-1")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app->add_option("--dist", c.dist, "Key distribution: uniform or zipf")
      ->check(CLI::IsMember({"uniform", "zipf"}))
      ->capture_default_str();
  app->add_option("--zipf-theta", c.theta, "Zipf skew (0.99 as YCSB)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app->add_option("--value-size", c.value_size, "Bytes per value")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20))
      ->capture_default_str();
  app->add_option("--key-prefix", c.key_prefix, "Prefix of every key")->capture_default_str();
  app->add_option("--seed", c.seed, "Random seed")->capture_default_str();
  app->add_option("--timeout-ms", c.timeout_ms,
                  "Per-request limit (etcd, kv, txn) and drain time at the end")
      ->check(CLI::Range(1, 600000))
      ->capture_default_str();
}

WorkloadSpec SpecOf(const Common& c, double read_fraction) {
  WorkloadSpec spec;
  spec.read_fraction = read_fraction;
  spec.keys = c.keys;
  spec.dist = c.dist == "zipf" ? KeyDist::kZipf : KeyDist::kUniform;
  spec.zipf_theta = c.theta;
  spec.value_size = c.value_size;
  spec.key_prefix = c.key_prefix;
  return spec;
}

int DefaultConnections(const Common& c) {
  if (c.connections > 0) {
    return std::min(c.connections, c.clients);
  }
  return c.system == "resp" ? c.clients : std::min(c.clients, 8);
}

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) {
    return s;
  }
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') {
      out += '"';
    }
    out += ch == '\n' ? ' ' : ch;
  }
  return out + "\"";
}

void PrintLatency(const char* what, const Histogram& h) {
  if (h.count() == 0) {
    return;
  }
  std::printf("  %-6s n=%-9" PRIu64
              " p50 %9.1f us  p99 %9.1f us  p99.9 %9.1f us  max %9.1f us  mean %9.1f us\n",
              what, h.count(), Us(h.Percentile(50)), Us(h.Percentile(99)), Us(h.Percentile(99.9)),
              Us(h.max()), h.mean() / 1000.0);
}

// "LO,AT,HI" into multi4's key ranges; false when it is not three numbers.
bool ParseSpan(const std::string& text, TxnOptions* txn) {
  uint64_t v[3] = {0, 0, 0};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (p == end || *p != ',') {
        return false;
      }
      ++p;
    }
    auto [next, ec] = std::from_chars(p, end, v[i]);
    if (ec != std::errc()) {
      return false;
    }
    p = next;
  }
  if (p != end) {
    return false;
  }
  txn->span_lo = v[0];
  txn->span_at = v[1];
  txn->span_hi = v[2];
  return true;
}

// The transactional workload named `workload`, or nothing for a plain one.
std::optional<TxnWorkload> TxnWorkloadOf(const std::string& workload) {
  if (workload == "multi4") {
    return TxnWorkload::kMulti4;
  }
  if (workload == "bank") {
    return TxnWorkload::kBank;
  }
  return std::nullopt;
}

int Run(const Common& c, const std::string& workload, double warmup, double duration,
        const std::string& label, const std::string& csv, bool timeline, TxnOptions txn) {
  const bool is_txn = c.system == "txn";
  const std::optional<TxnWorkload> txn_workload = TxnWorkloadOf(workload);
  if (is_txn && !txn_workload && workload != "write") {
    std::cerr << "loadgen: --system txn runs the workloads write, multi4 and bank\n";
    return 2;
  }
  if (!is_txn && txn_workload) {
    std::cerr << "loadgen: the workload " << workload << " needs --system txn\n";
    return 2;
  }
  txn.workload = txn_workload.value_or(TxnWorkload::kWrite);
  Workload wl(SpecOf(c, ReadFractionOf(workload).value_or(0)), c.seed);
  RunOptions o;
  o.endpoints = ParseEndpoints(c.endpoints);
  o.clients = c.clients;
  o.connections = DefaultConnections(c);
  o.threads = c.threads;
  o.warmup_s = warmup;
  o.duration_s = duration;
  o.timeout_ms = c.timeout_ms;
  o.seed = c.seed;
  const RunOutcome r = is_txn               ? RunTxn(o, wl, txn)
                       : c.system == "etcd" ? RunEtcd(o, wl)
                       : c.system == "kv"   ? RunKv(o, wl)
                                            : RunResp(o, wl);
  const Stats& s = r.stats;
  const double secs = r.window.seconds();
  const double rate = secs > 0 ? static_cast<double>(s.ops) / secs : 0;
  uint64_t min_sec = 0;
  uint64_t max_sec = 0;
  // Whole seconds of the window only (the last partial second would look like a dip).
  const auto whole = static_cast<size_t>(duration);
  for (size_t i = 0; i < whole; ++i) {
    const uint64_t v = i < s.per_second.size() ? s.per_second[i] : 0;
    min_sec = i == 0 ? v : std::min(min_sec, v);
    max_sec = std::max(max_sec, v);
  }
  std::printf("%s %s %s %s keys=%" PRIu64 " value=%zuB clients=%d conns=%d: %" PRIu64
              " ops in %.2f s = %.0f ops/s, errors %" PRIu64 ", read misses %" PRIu64,
              label.empty() ? c.system.c_str() : label.c_str(), workload.c_str(), c.dist.c_str(),
              c.endpoints.c_str(), c.keys, c.value_size, c.clients, o.connections, s.ops, secs,
              rate, s.errors, s.misses);
  if (is_txn) {
    // Of the transactions that ended in the window, committed or aborted.
    const uint64_t ended = s.ops + s.aborts;
    std::printf(
        ", aborts %" PRIu64 " (%.2f%%)", s.aborts,
        ended > 0 ? 100.0 * static_cast<double>(s.aborts) / static_cast<double>(ended) : 0.0);
  }
  std::printf("\n");
  PrintLatency("all", s.all);
  PrintLatency("read", s.reads);
  PrintLatency("write", s.writes);
  if (whole > 0) {
    std::printf("  ops per second over %zu s: min %" PRIu64 ", max %" PRIu64 "\n", whole, min_sec,
                max_sec);
  }
  const double cpu_us_per_op = s.ops > 0 ? r.cpu_s * 1e6 / static_cast<double>(s.ops) : 0;
  std::printf("  loadgen CPU over the window: %.2f s, %.1f us per op\n", r.cpu_s, cpu_us_per_op);
  if (timeline) {
    std::printf("  second  ops   slowest ms\n");
    for (size_t i = 0; i < s.per_second.size(); ++i) {
      std::printf("  %6zu %6" PRIu64 " %10.1f\n", i, s.per_second[i],
                  static_cast<double>(s.per_second_max[i]) / 1e6);
    }
  }
  if (!s.first_error.empty()) {
    std::printf("  first error: %s\n", s.first_error.c_str());
  }
  for (const std::string& note : r.notes) {
    std::printf("  %s\n", note.c_str());
  }
  std::fflush(stdout);
  if (!csv.empty()) {
    bool fresh = true;
    {
      std::ifstream in(csv);
      fresh = !in.good() || in.peek() == std::ifstream::traits_type::eof();
    }
    std::ofstream out(csv, std::ios::app);
    if (!out) {
      std::cerr << "loadgen: cannot write " << csv << "\n";
      return 1;
    }
    if (fresh) {
      out << "label,system,workload,dist,keys,value_size,clients,connections,duration_s,ops,"
             "ops_per_s,errors,misses,p50_us,p99_us,p999_us,max_us,mean_us,read_p99_us,"
             "write_p99_us,min_sec_ops,max_sec_ops,aborts,loadgen_cpu_us_per_op,first_error\n";
    }
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "%s,%s,%s,%s,%" PRIu64 ",%zu,%d,%d,%.3f,%" PRIu64 ",%.1f,%" PRIu64 ",%" PRIu64
                  ",%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.1f,",
                  CsvField(label).c_str(), c.system.c_str(), workload.c_str(), c.dist.c_str(),
                  c.keys, c.value_size, c.clients, o.connections, secs, s.ops, rate, s.errors,
                  s.misses, Us(s.all.Percentile(50)), Us(s.all.Percentile(99)),
                  Us(s.all.Percentile(99.9)), Us(s.all.max()), s.all.mean() / 1000.0,
                  Us(s.reads.Percentile(99)), Us(s.writes.Percentile(99)), min_sec, max_sec,
                  s.aborts, cpu_us_per_op);
    out << buf << CsvField(s.first_error) << "\n";
  }
  return s.ops == 0 || r.check_failed ? 1 : 0;
}

int Load(const Common& c, int batch, const std::string& workload, int64_t balance) {
  Workload wl(SpecOf(c, 0), c.seed);
  LoadOptions o;
  o.endpoints = ParseEndpoints(c.endpoints);
  o.clients = c.clients;
  o.connections = DefaultConnections(c);
  o.threads = c.threads;
  o.count = c.keys;
  o.batch = batch;
  o.timeout_ms = c.timeout_ms;
  o.seed = c.seed;
  TxnOptions txn;
  txn.workload = workload == "bank" ? TxnWorkload::kBank : TxnWorkload::kWrite;
  txn.balance = balance;
  if (c.system != "txn" && txn.workload == TxnWorkload::kBank) {
    std::cerr << "loadgen: load --workload bank needs --system txn\n";
    return 2;
  }
  const LoadOutcome r = c.system == "txn"    ? LoadTxn(o, wl, txn)
                        : c.system == "etcd" ? LoadEtcd(o, wl)
                        : c.system == "kv"   ? LoadKv(o, wl)
                                             : LoadResp(o, wl);
  std::printf("load %s %s: %" PRIu64 " of %" PRIu64
              " keys (%zu-byte values) in %.2f s = %.0f keys/s, errors %" PRIu64 "\n",
              c.system.c_str(), c.endpoints.c_str(), r.keys, c.keys, c.value_size, r.seconds,
              r.seconds > 0 ? static_cast<double>(r.keys) / r.seconds : 0, r.errors);
  if (!r.first_error.empty()) {
    std::printf("  first error: %s\n", r.first_error.c_str());
  }
  std::fflush(stdout);
  return r.keys == c.keys ? 0 : 1;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "Closed-loop load generator for MiceDB, Redis (RESP), etcd (v3 gRPC KV), MiceDB's raw "
      "gRPC API (micedb.kv.v1) and MiceDB's transactions (micedb.txn.v1)"};
  app.require_subcommand(1);

  Common run_c;
  std::string workload = "rw50";
  double warmup = 1;
  double duration = 10;
  std::string label;
  std::string csv;
  CLI::App* run = app.add_subcommand("run", "Measure one workload at one client count");
  AddCommon(run, run_c);
  run->add_option("--workload", workload,
                  "write, read, rw50 (50/50) or read95 (95% reads); txn: write (one-shot "
                  "Commit of one PUT), multi4 (of 4 PUTs, two keys each side of --span) or "
                  "bank (read two accounts, write both)")
      ->check(CLI::IsMember({"write", "read", "rw50", "read95", "multi4", "bank"}))
      ->capture_default_str();
  TxnOptions run_txn;
  std::string span;
  run->add_option("--span", span,
                  "multi4: LO,AT,HI -- two keys of [LO, AT), two of [AT, HI) (a region boundary "
                  "at AT and none inside makes every transaction span exactly two regions); "
                  "default 0,keys/2,keys");
  run->add_option("--balance", run_txn.balance,
                  "bank: each account's balance as loaded; the total is checked after the run")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  run->add_option("--warmup", warmup, "Seconds before measuring")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  run->add_option("--duration", duration, "Seconds measured")
      ->check(CLI::Range(0.1, 36000.0))
      ->capture_default_str();
  run->add_option("--label", label, "Name of the system in the output (e.g. micedb)");
  run->add_option("--csv", csv, "Append one result row to this CSV file");
  bool timeline = false;
  run->add_flag("--timeline", timeline, "Print each second's completions and slowest request");

  Common load_c;
  load_c.clients = 32;
  load_c.connections = 4;
  load_c.timeout_ms = 30000;
  int batch = 100;
  CLI::App* load = app.add_subcommand("load", "Write every key once (before read workloads)");
  AddCommon(load, load_c);
  load->add_option("--batch", batch, "Keys per MSET (RESP) or one-shot Commit (txn)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  std::string load_workload = "write";
  int64_t load_balance = 1000;
  load->add_option("--workload", load_workload,
                   "txn: bank writes --balance as every value; write: random values")
      ->check(CLI::IsMember({"write", "bank"}))
      ->capture_default_str();
  load->add_option("--balance", load_balance, "bank: each account's balance")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) {
    if (!span.empty() && !ParseSpan(span, &run_txn)) {
      std::cerr << "loadgen: --span takes LO,AT,HI (three key indexes), not '" << span << "'\n";
      return 2;
    }
    return Run(run_c, workload, warmup, duration, label, csv, timeline, run_txn);
  }
  return Load(load_c, batch, load_workload, load_balance);
}

}  // namespace
}  // namespace micedb::bench

int main(int argc, char** argv) {
  try {
    return micedb::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
}
