#include "cli/start_options.h"

#include <gtest/gtest.h>

namespace micedb::cli {
namespace {

StartOptions Good() {
  StartOptions o;
  o.node_id = 1;
  o.data_dir = "/tmp/x";
  return o;
}

TEST(HostPortTest, ParsesV4AndV6) {
  auto a = ParseHostPort("127.0.0.1:6380");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6380);
  auto b = ParseHostPort("[::1]:7000");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->ToString(), "[::1]:7000");
}

TEST(HostPortTest, RejectsBadPorts) {
  for (const char* bad : {"localhost", "localhost:", "localhost:0", "localhost:65536",
                          "localhost:12a", ":80", "::1:80", "[::1]80"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
  EXPECT_TRUE(ParseHostPort("h:0", /*allow_zero=*/true).ok());
}

TEST(PeersTest, ParsesList) {
  auto p = ParsePeers("1=127.0.0.1:20161,2=127.0.0.1:20162");
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[1].id, NodeId(2));
  EXPECT_EQ((*p)[1].addr.port, 20162);
}

TEST(PeersTest, RejectsDuplicatesAndGarbage) {
  EXPECT_FALSE(ParsePeers("1=a:1,1=b:2").ok());
  EXPECT_FALSE(ParsePeers("0=a:1").ok());
  EXPECT_FALSE(ParsePeers("x=a:1").ok());
  EXPECT_FALSE(ParsePeers("1=a").ok());
  EXPECT_FALSE(ParsePeers("1=a:1,,2=b:2").ok());
}

TEST(LabelsTest, ParsesAndRefuses) {
  auto l = ParseLabels("zone=a,rack=r-1.b_2");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->size(), 2u);
  EXPECT_EQ(l->at("zone"), "a");
  EXPECT_EQ(l->at("rack"), "r-1.b_2");
  EXPECT_TRUE(ParseLabels("")->empty());
  for (const char* bad : {"zone", "=a", "zone=", "zone=a,zone=b", "zone=a b", "zone=a,", "z=é"}) {
    EXPECT_FALSE(ParseLabels(bad).ok()) << bad;
  }
  std::string many;
  for (int i = 0; i < 17; ++i) many += (i ? ",k" : "k") + std::to_string(i) + "=v";
  EXPECT_FALSE(ParseLabels(many).ok());
  StartOptions o = Good();
  o.labels = "zone=a,,";
  EXPECT_FALSE(Validate(o).ok());
}

TEST(DurationTest, ParsesUnitsAndRefusesTheRest) {
  EXPECT_EQ(*ParseDuration("500ms"), 500);
  EXPECT_EQ(*ParseDuration("60s"), 60'000);
  EXPECT_EQ(*ParseDuration("5m"), 300'000);
  EXPECT_EQ(*ParseDuration("2h"), 7'200'000);
  for (const char* bad : {"", "60", "s", "1.5s", "-5s", "5 s", "5sec", "99999999999999s"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  StartOptions o = Good();
  o.store_down_time = "500ms";  // below 1 s
  EXPECT_FALSE(Validate(o).ok());
  o.store_down_time = "5s";
  EXPECT_TRUE(Validate(o).ok());
}

TEST(ValidateTest, AcceptsDefaults) { EXPECT_TRUE(Validate(Good()).ok()); }

TEST(ValidateTest, NamesTheFlag) {
  auto o = Good();
  o.node_id = 0;
  EXPECT_NE(Validate(o).message().find("--node-id"), std::string::npos);

  o = Good();
  o.listen_redis = "127.0.0.1:99999";
  EXPECT_NE(Validate(o).message().find("--listen-redis"), std::string::npos);

  o = Good();
  o.listen_pg = o.listen_http;
  EXPECT_NE(Validate(o).message().find("already used"), std::string::npos);

  o = Good();
  o.initial_peers = "2=127.0.0.1:1,3=127.0.0.1:2";
  EXPECT_NE(Validate(o).message().find("does not include this node"), std::string::npos);

  o = Good();
  o.log_format = "xml";
  EXPECT_NE(Validate(o).message().find("--log-format"), std::string::npos);

  for (double drift : {-0.1, 0.6}) {
    o = Good();
    o.max_clock_drift = drift;
    EXPECT_NE(Validate(o).message().find("--max-clock-drift"), std::string::npos) << drift;
  }

  o = Good();
  o.schedule_leader_limit = 0;  // leader balancing off
  EXPECT_TRUE(Validate(o).ok());
  o.schedule_leader_limit = 65;
  EXPECT_NE(Validate(o).message().find("--schedule-leader-limit"), std::string::npos);

  o = Good();
  o.intent_sweep_interval = "0";  // never
  EXPECT_TRUE(Validate(o).ok());
  o.intent_sweep_interval = "10ms";
  EXPECT_NE(Validate(o).message().find("--intent-sweep-interval"), std::string::npos);
}

TEST(SecurityTest, LoopbackHosts) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"0.0.0.0", "10.0.0.1", "::", "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

TEST(SecurityTest, ANonLoopbackPeerPortNeedsCertificatesOrInsecure) {
  StartOptions o = Good();
  o.listen_peer = "0.0.0.0:20160";
  Status st = Validate(o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--certs-dir"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("--insecure"), std::string::npos) << st.ToString();
  o.certs_dir = "/etc/micedb/certs";
  EXPECT_TRUE(Validate(o).ok());
  o.certs_dir.clear();
  o.insecure = true;
  EXPECT_TRUE(Validate(o).ok());
  o.certs_dir = "/etc/micedb/certs";
  EXPECT_FALSE(Validate(o).ok());  // both: contradictory
}

TEST(SecurityTest, APlainNonLoopbackRedisPortNeedsAPassword) {
  StartOptions o = Good();
  o.certs_dir = "/etc/micedb/certs";
  o.listen_redis = "10.0.0.1:6379";
  Status st = Validate(o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--requirepass"), std::string::npos) << st.ToString();
  o.requirepass = "secret";
  EXPECT_TRUE(Validate(o).ok());
}

TEST(SecurityTest, RedisTlsNeedsCertificatesAndAKnownClientPolicy) {
  StartOptions o = Good();
  o.listen_redis_tls = "127.0.0.1:6390";
  EXPECT_FALSE(Validate(o).ok());
  o.certs_dir = "/etc/micedb/certs";
  EXPECT_TRUE(Validate(o).ok());
  o.redis_tls_auth_clients = "maybe";
  EXPECT_FALSE(Validate(o).ok());
  o.redis_tls_auth_clients = "optional";
  EXPECT_TRUE(Validate(o).ok());
}

}  // namespace
}  // namespace micedb::cli
