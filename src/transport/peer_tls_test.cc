// The peer port under mutual TLS (peer_tls.cc; docs/security.md): raft streams and gRPC work
// between nodes of one CA; a plain sender, another CA's node and a client certificate get
// nothing through. Also the per-destination byte bound (TransportOptions::max_queued_bytes).
#include <gtest/gtest.h>

#include <asio.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "security/certs.h"
#include "security/tls.h"
#include "transport/peer_transport.h"
#include "transport/transport_test_util.h"

namespace micedb::transport {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Counter : public InboundHandler {
 public:
  void OnMessages(std::vector<raft::Message> msgs) override {
    std::lock_guard<std::mutex> l(mu_);
    got_ += msgs.size();
    cv_.notify_all();
  }
  void OnForward(NodeId, uint64_t, ForwardRequest) override {}
  void OnSnapshot(raft::Message, store::StagedSnapshot) override {
    std::lock_guard<std::mutex> l(mu_);
    ++snapshots_;
    cv_.notify_all();
  }
  void OnSnapshotSent(uint64_t, NodeId, bool) override {}
  void OnUnreachable(NodeId) override {}
  bool Wait(size_t messages, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return got_ >= messages; });
  }
  bool WaitSnapshot(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return snapshots_ > 0; });
  }
  size_t got() {
    std::lock_guard<std::mutex> l(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t got_ = 0;
  int snapshots_ = 0;
};

// A CA and its node and client certificates in a temporary directory.
struct Certs {
  explicit Certs(const std::string& name) {
    root = fs::temp_directory_path() / fmt::format("peer_tls_test_{}_{}", ::getpid(), name);
    fs::remove_all(root);
    security::CertOptions o{.certs_dir = (root / "certs").string(),
                            .ca_key = (root / "ca.key").string()};
    dir = o.certs_dir;
    EXPECT_TRUE(security::CreateCa(o).ok());
    EXPECT_TRUE(security::CreateNode(o, {"127.0.0.1"}).ok());
    EXPECT_TRUE(security::CreateClient(o, "root").ok());
  }
  ~Certs() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path root;
  std::string dir;
};

// A transport on a loopback port; with `files`, under mutual TLS with them.
struct Node {
  Node(uint64_t id, const security::TlsFiles* files, size_t max_queued_bytes = size_t{512} << 20) {
    snap_dir = (fs::temp_directory_path() / fmt::format("peer_tls_test_snap_{}_{}", ::getpid(), id))
                   .string();
    fs::create_directories(snap_dir);
    TransportOptions o;
    o.node_id = NodeId(id);
    o.snap_dir = snap_dir;
    o.max_queued_bytes = max_queued_bytes;
    if (files != nullptr) {
      o.tls_server = *security::MakeServerContext(
          *files, security::ClientAuth::kRequire,
          {std::string(security::kAlpnRaft), std::string(security::kAlpnGrpc)});
      o.tls_client = *security::MakeClientContext(*files, security::kAlpnRaft);
      grpc::SslCredentialsOptions creds;
      creds.pem_root_certs = *security::ReadPem(files->ca);
      creds.pem_cert_chain = *security::ReadPem(files->cert);
      creds.pem_private_key = *security::ReadPem(files->key);
      o.channel_creds = grpc::SslCredentials(creds);
    }
    transport = std::make_unique<PeerTransport>(o, &handler);
    grpc::ServerBuilder builder;
    builder.RegisterService(transport->service());
    server = builder.BuildAndStart();
    status = transport->Listen("127.0.0.1:0", server.get());
  }
  ~Node() {
    transport->StopListening();
    server->Shutdown(std::chrono::system_clock::now() + 200ms);
    transport->Shutdown();
    server->Wait();
    std::error_code ec;
    fs::remove_all(snap_dir, ec);
  }
  std::string addr() const { return fmt::format("127.0.0.1:{}", transport->port()); }

  std::string snap_dir;
  Counter handler;
  std::unique_ptr<PeerTransport> transport;
  std::unique_ptr<grpc::Server> server;
  Status status;
};

raft::Message Msg(uint64_t from, uint64_t to, uint64_t index) {
  raft::Message m;
  m.set_type(raft::MSG_APP);
  m.set_from(from);
  m.set_to(to);
  m.set_region_id(1);
  m.set_index(index);
  m.add_entries()->set_data(std::string(1000, 'x'));
  return m;
}

void SendMany(Node& from, uint64_t to, int n) {
  for (int i = 0; i < n; ++i) from.transport->Send(Msg(1, to, i));
}

TEST(PeerTls, RaftStreamsAndGrpcWorkBetweenNodesOfOneCa) {
  Certs certs("one");
  const security::TlsFiles files = security::NodeFiles(certs.dir);
  Node a(1, &files), b(2, &files);
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  a.transport->SetAddress(NodeId(2), b.addr());
  b.transport->SetAddress(NodeId(1), a.addr());
  SendMany(a, 2, 200);
  EXPECT_TRUE(b.handler.Wait(200));
  SendMany(b, 1, 5);
  EXPECT_TRUE(a.handler.Wait(5));

  // gRPC on the same port, through the TLS bridge: a snapshot's last chunk.
  SnapshotDone done;
  bool written = false;
  grpc::Status st =
      SendLastSnapshotChunk(a.transport->ChannelTo(NodeId(2)), Msg(1, 2, 9), &done, &written);
  ASSERT_TRUE(written && st.ok()) << st.error_message();
  EXPECT_TRUE(b.handler.WaitSnapshot());
}

TEST(PeerTls, StrangersGetNothingThrough) {
  Certs ours("ours"), theirs("theirs");
  const security::TlsFiles node_files = security::NodeFiles(ours.dir);
  const security::TlsFiles other_ca = security::NodeFiles(theirs.dir);
  // Our CA's client certificate may call gRPC but is not a node: no raft stream.
  const security::TlsFiles client_files = security::ClientFiles(ours.dir, "root");
  Node target(9, &node_files);
  Node plain(1, nullptr), foreign(2, &other_ca), client(3, &client_files);
  for (Node* n : {&plain, &foreign, &client}) {
    ASSERT_TRUE(n->status.ok());
    n->transport->SetAddress(NodeId(9), target.addr());
    SendMany(*n, 9, 50);
  }
  // A node of the cluster gets through, so the refusals above are not a broken target.
  Node friendly(4, &node_files);
  friendly.transport->SetAddress(NodeId(9), target.addr());
  SendMany(friendly, 9, 50);
  ASSERT_TRUE(target.handler.Wait(50));
  // Let the strangers retry for a while (they reconnect with backoff).
  for (int i = 0; i < 10; ++i) {
    for (Node* n : {&plain, &foreign, &client}) SendMany(*n, 9, 5);
    std::this_thread::sleep_for(50ms);
  }
  SendMany(friendly, 9, 1);
  ASSERT_TRUE(target.handler.Wait(51));
  EXPECT_EQ(target.handler.got(), 51u);

  // gRPC without a certificate from our CA: refused too.
  auto stub = RaftTransport::NewStub(foreign.transport->ChannelTo(NodeId(9)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 3s);
  SnapshotDone done;
  auto writer = stub->SendSnapshot(&ctx, &done);
  writer->WritesDone();
  EXPECT_FALSE(writer->Finish().ok());
  EXPECT_FALSE(target.handler.WaitSnapshot(100ms));
}

TEST(PeerLimits, BytesQueuedForADestinationAreBounded) {
  // A destination that accepts the stream and never reads it: the sender's queue fills.
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::ip::tcp::socket held(io);
  std::thread accepter([&] {
    asio::error_code ec;
    acc.accept(held, ec);
  });
  Node a(1, nullptr, /*max_queued_bytes=*/size_t{1} << 20);
  a.transport->SetAddress(NodeId(2), fmt::format("127.0.0.1:{}", acc.local_endpoint().port()));
  // 64 MiB of appends, far more than the socket buffers plus 1 MiB take; well under the
  // message count bound (16384), which alone would keep them all.
  for (uint64_t i = 0; i < 1024; ++i) {
    raft::Message m = Msg(1, 2, i);
    m.mutable_entries(0)->set_data(std::string(64 << 10, 'y'));
    a.transport->Send(std::move(m));
  }
  accepter.join();
  EXPECT_GT(a.transport->dropped_messages(), 0u);
  // Everything queued or in the socket is at most the bound plus what the kernel buffers
  // (a few MiB on loopback): most of the 64 MiB was dropped.
  EXPECT_GT(a.transport->dropped_messages(), 512u);
}

}  // namespace
}  // namespace micedb::transport
