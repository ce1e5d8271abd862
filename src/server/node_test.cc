// One node in-process on loopback: the HTTP endpoints and the metrics text as an operator's
// scraper reads them.
#include "server/node.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "server/test_socket.h"

namespace micedb::server::test {
namespace {

using namespace std::chrono_literals;

std::string Get(uint16_t port, const std::string& path, int* status) {
  TestSocket s(port);
  if (!s.ok() || !s.Send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) return "";
  std::string r = s.ReadHttp();
  *status = r.size() > 12 ? std::atoi(r.substr(9, 3).c_str()) : 0;
  auto body = r.find("\r\n\r\n");
  return body == std::string::npos ? "" : r.substr(body + 4);
}

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("micedb-node-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    NodeOptions o;
    o.id = NodeId(1);
    o.data_dir = dir_.string();
    o.listen_peer = "127.0.0.1:0";
    o.listen_http = "127.0.0.1:0";
    o.redis_port = 0;
    o.initial_peers = {{NodeId(1), "127.0.0.1:0"}};
    o.store.tick_ms = 10;
    o.labels = {{"zone", "z1"}, {"rack", "r7"}};
    node_ = std::make_unique<Node>(o);
    Status st = node_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override {
    if (node_) node_->Stop();
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  void WaitReady() {
    int status = 0;
    for (int i = 0; i < 500 && status != 200; ++i) {
      Get(node_->http_port(), "/readyz", &status);
      if (status != 200) std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(status, 200);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Node> node_;
};

// Parses the Prometheus text format strictly enough to catch a broken exposition: every
// sample belongs to a family announced by # HELP and # TYPE before it, names are valid, and
// every value is a number. Returns sample name (with labels) -> value.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> typed, helped;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      std::string type = rest.substr(rest.find(' ') + 1);
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_TRUE(typed.insert(name).second) << "family typed twice: " << name;
      continue;
    }
    auto sp = line.rfind(' ');
    EXPECT_NE(sp, std::string::npos) << line;
    std::string key = line.substr(0, sp);
    std::string name = key.substr(0, key.find('{'));
    for (char c : name) {
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_') << line;
    }
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(family) && family.size() > std::strlen(suffix) && family.ends_with(suffix)) {
        family = family.substr(0, family.size() - std::strlen(suffix));
      }
    }
    EXPECT_TRUE(typed.count(family)) << "sample before its # TYPE: " << line;
    EXPECT_TRUE(helped.count(family)) << "sample before its # HELP: " << line;
    char* end = nullptr;
    std::string value = line.substr(sp + 1);
    double v = std::strtod(value.c_str(), &end);
    EXPECT_TRUE(end && *end == '\0' && !value.empty()) << "not a number: " << line;
    EXPECT_TRUE(samples.emplace(key, v).second) << "sample twice: " << line;
  }
  return samples;
}

TEST_F(NodeTest, HealthReadinessAndMetricsAsAScraperReadsThem) {
  int status = 0;
  EXPECT_EQ(Get(node_->http_port(), "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  ASSERT_NO_FATAL_FAILURE(WaitReady());

  auto before = ParseMetrics(Get(node_->http_port(), "/metrics", &status));
  ASSERT_EQ(status, 200);
  ASSERT_TRUE(before.count("micedb_raft_proposals_total"));
  ASSERT_TRUE(before.count("micedb_raft_entries_applied_total"));
  EXPECT_EQ(before.count("micedb_region_is_leader{region=\"1\"}"), 1u);
  EXPECT_EQ(before["micedb_region_is_leader{region=\"1\"}"], 1.0);

  // A write through the Redis port moves the counters.
  TestSocket redis(node_->redis_port());
  ASSERT_TRUE(redis.ok());
  ASSERT_TRUE(redis.Send("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n"));
  ASSERT_EQ(redis.Read("\r\n"), "+OK\r\n");
  auto after = ParseMetrics(Get(node_->http_port(), "/metrics", &status));
  EXPECT_GT(after["micedb_raft_proposals_total"], before["micedb_raft_proposals_total"]);
  EXPECT_GT(after["micedb_raft_entries_applied_total"],
            before["micedb_raft_entries_applied_total"]);

  // /debug/raft is JSON naming region 1 led by node 1.
  auto raft = nlohmann::json::parse(Get(node_->http_port(), "/debug/raft?hash=1", &status), nullptr,
                                    /*allow_exceptions=*/false);
  ASSERT_FALSE(raft.is_discarded());
  // Region 1 holds the data; region 2 is the coordinator's (docs/coordinator.md).
  ASSERT_EQ(raft["regions"].size(), 2u) << raft.dump();
  EXPECT_EQ(raft["regions"][1]["id"], 2);
  EXPECT_EQ(raft["regions"][0]["id"], 1);
  EXPECT_EQ(raft["regions"][0]["leader"], 1);
  EXPECT_GE(raft["regions"][0]["data_keys"].get<int>(), 1) << raft.dump();
  EXPECT_EQ(raft["regions"][0]["data_hash"].get<std::string>().size(), 8u);
}

TEST_F(NodeTest, TheCoordinatorKnowsTheStoreAndItsRegion) {
  ASSERT_NO_FATAL_FAILURE(WaitReady());
  // Heartbeats reach the coordinator within a second or two of its warm-up.
  nlohmann::json cluster;
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    cluster = nlohmann::json::parse(Get(node_->http_port(), "/api/v1/cluster", &status), nullptr,
                                    /*allow_exceptions=*/false);
    if (status == 200 && !cluster.is_discarded() && cluster["stores"].size() == 1 &&
        cluster["regions"].size() == 1) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(status, 200) << cluster.dump();
  ASSERT_EQ(cluster["stores"].size(), 1u) << cluster.dump();
  EXPECT_EQ(cluster["stores"][0]["meta"]["id"], "1") << cluster.dump();  // uint64 as a string
  EXPECT_EQ(cluster["stores"][0]["status"], "up");
  ASSERT_EQ(cluster["regions"].size(), 1u) << cluster.dump();
  EXPECT_EQ(cluster["regions"][0]["meta"]["region"]["id"], "1");
  EXPECT_EQ(cluster["regions"][0]["meta"]["leader"], "1");
  EXPECT_TRUE(cluster["state"]["bootstrapped"].get<bool>());
  EXPECT_EQ(cluster["stores"][0]["meta"]["labels"]["zone"], "z1") << cluster.dump();
  EXPECT_EQ(cluster["stores"][0]["meta"]["labels"]["rack"], "r7");
  auto metrics = ParseMetrics(Get(node_->http_port(), "/metrics", &status));
  EXPECT_EQ(metrics["micedb_coordinator_serving"], 1.0);
  EXPECT_GE(metrics["micedb_coordinator_store_heartbeats_total"], 1.0);

  // Writes and reads show in the next store heartbeat (keys and bytes since the one before),
  // and the store reports the bytes its data takes.
  TestSocket redis(node_->redis_port());
  ASSERT_TRUE(redis.ok());
  ASSERT_TRUE(redis.Send("*5\r\n$4\r\nMSET\r\n$2\r\nk1\r\n$2\r\nv1\r\n$2\r\nk2\r\n$2\r\nv2\r\n"));
  ASSERT_EQ(redis.Read("\r\n"), "+OK\r\n");
  ASSERT_TRUE(redis.Send("*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n"));
  ASSERT_EQ(redis.Read("v1\r\n"), "$2\r\nv1\r\n");
  uint64_t keys_written = 0, keys_read = 0, used = 0;
  for (int i = 0; i < 100 && (keys_written < 2 || keys_read < 1); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto stores = nlohmann::json::parse(Get(node_->http_port(), "/api/v1/stores", &status), nullptr,
                                        /*allow_exceptions=*/false);
    if (status != 200 || stores.is_discarded() || stores["stores"].size() != 1) continue;
    const auto& st = stores["stores"][0]["stats"];
    // Each heartbeat carries the traffic since the one before (the MSET's two keys in one).
    keys_written =
        std::max<uint64_t>(keys_written, std::stoull(st["keysWritten"].get<std::string>()));
    keys_read = std::max<uint64_t>(keys_read, std::stoull(st["keysRead"].get<std::string>()));
    used = std::stoull(st["used"].get<std::string>());
  }
  EXPECT_EQ(keys_written, 2u) << "used " << used;
  EXPECT_GE(keys_read, 1u);
  EXPECT_GT(used, 0u);
}

}  // namespace
}  // namespace micedb::server::test
