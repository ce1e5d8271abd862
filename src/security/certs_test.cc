#include "security/certs.h"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "security/tls.h"

namespace micedb::security {
namespace {

namespace fs = std::filesystem;

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("micedb-certs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    opts_.certs_dir = (dir_ / "certs").string();
    opts_.ca_key = (dir_ / "safe" / "ca.key").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  CertOptions opts_;
};

TEST_F(CertsTest, CreatesACaNodeAndClientThatChainToIt) {
  ASSERT_TRUE(CreateCa(opts_).ok());
  ASSERT_TRUE(CreateNode(opts_, {"127.0.0.1", "localhost", "::1"}).ok());
  ASSERT_TRUE(CreateClient(opts_, "root").ok());

  auto ca = ReadCertInfo(CaCertPath(opts_.certs_dir));
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  EXPECT_TRUE(ca->is_ca);
  auto node = ReadCertInfo(NodeCertPath(opts_.certs_dir));
  ASSERT_TRUE(node.ok());
  EXPECT_FALSE(node->is_ca);
  EXPECT_EQ(node->common_name, "node");
  EXPECT_EQ(node->hosts, (std::vector<std::string>{"node", "127.0.0.1", "localhost", "::1"}));
  auto client = ReadCertInfo(ClientCertPath(opts_.certs_dir, "root"));
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->common_name, "root");

  // Keys are private to their owner.
  struct stat st {};
  ASSERT_EQ(::stat(NodeKeyPath(opts_.certs_dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(opts_.ca_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The files load into TLS contexts (certificate matches key, CA readable).
  EXPECT_TRUE(MakeServerContext(NodeFiles(opts_.certs_dir), ClientAuth::kRequire, {"h2"}).ok());
  EXPECT_TRUE(MakeClientContext(ClientFiles(opts_.certs_dir, "root"), "h2").ok());
}

TEST_F(CertsTest, RefusesToOverwriteUnlessAsked) {
  ASSERT_TRUE(CreateCa(opts_).ok());
  Status again = CreateCa(opts_);
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.message().find("exists already"), std::string::npos) << again.ToString();
  opts_.overwrite = true;
  EXPECT_TRUE(CreateCa(opts_).ok());
}

TEST_F(CertsTest, BadInputsAreRefused) {
  EXPECT_FALSE(CreateNode(opts_, {"127.0.0.1"}).ok());  // no CA yet
  ASSERT_TRUE(CreateCa(opts_).ok());
  EXPECT_FALSE(CreateNode(opts_, {}).ok());
  EXPECT_FALSE(CreateNode(opts_, {"bad host/"}).ok());
  EXPECT_FALSE(CreateClient(opts_, "node").ok());
  EXPECT_FALSE(CreateClient(opts_, "../x").ok());
  EXPECT_FALSE(CreateClient(opts_, "").ok());
  CertOptions no_key = opts_;
  no_key.ca_key.clear();
  EXPECT_FALSE(CreateClient(no_key, "root").ok());
}

TEST_F(CertsTest, AKeyFromAnotherCaIsRefused) {
  ASSERT_TRUE(CreateCa(opts_).ok());
  CertOptions other = opts_;
  other.certs_dir = (dir_ / "other").string();
  other.ca_key = (dir_ / "other.key").string();
  ASSERT_TRUE(CreateCa(other).ok());
  CertOptions mixed = opts_;
  mixed.ca_key = other.ca_key;
  Status st = CreateClient(mixed, "root");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is not the key of"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace micedb::security
