// kv_local_server: the RESP server over one local engine, with no replication, for trying
// redis-cli, redis-py and redis-benchmark by hand:
//
//   kv_local_server --port 6380                      # in memory
//   kv_local_server --port 6380 --data-dir /tmp/kv   # on RocksDB, kept across restarts
//
// Serves until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/clock.h"
#include "common/logging.h"
#include "frontend/resp/resp_server.h"
#include "kv/local_backend.h"
#include "storage/mem_engine.h"
#include "storage/rocks_engine.h"

namespace {

using namespace micedb;

int Serve(const std::string& data_dir, const resp::ServerOptions& options) {
  std::unique_ptr<storage::Engine> engine;
  if (data_dir.empty()) {
    engine = std::make_unique<storage::MemEngine>();
  } else {
    auto opened = storage::RocksEngine::Open(data_dir, storage::RocksOptions{});
    if (!opened.ok()) {
      std::fprintf(stderr, "cannot open %s: %s\n", data_dir.c_str(),
                   opened.status().ToString().c_str());
      return 1;
    }
    engine = std::move(opened).value();
  }
  auto backend = kv::LocalBackend::Open(engine.get(), SystemClock::Get());
  if (!backend.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", backend.status().ToString().c_str());
    return 1;
  }

  // Block the stop signals in every thread, then wait for one here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  resp::RespServer server(options, backend->get());
  if (Status st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("kv_local_server listening on %s:%u (%s)\n", options.host.c_str(), server.port(),
              data_dir.empty() ? "in memory" : data_dir.c_str());
  std::printf("try: redis-cli -p %u\n", server.port());
  std::fflush(stdout);

  // Active expiry: a little every 100 ms.
  std::atomic<bool> stop{false};
  std::thread expiry([&] {
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      Result<int64_t> deleted = (*backend)->ExpireCycle(200);
      if (!deleted.ok()) GetLogger("kv")->warn("expiry: {}", deleted.status().ToString());
    }
  });

  int received = 0;
  sigwait(&signals, &received);
  std::printf("signal %d: stopping\n", received);
  stop = true;
  expiry.join();
  server.Stop();
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"MiceDB single-node RESP server (no replication), for trying Redis clients"};
  micedb::resp::ServerOptions options;
  std::string data_dir;
  int64_t request_timeout_ms = options.request_timeout.count();
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "Port to listen on (0: any)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "RocksDB directory (default: keep data in memory)");
  app.add_option("--password", options.password, "Require AUTH with this password");
  app.add_option("--io-threads", options.io_threads, "I/O threads")->capture_default_str();
  app.add_option("--max-connections", options.max_connections, "Open connections allowed")
      ->capture_default_str();
  app.add_option("--request-timeout-ms", request_timeout_ms,
                 "Close a connection whose request takes longer than this to arrive (0: never)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  return Serve(data_dir, options);
}

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
}
