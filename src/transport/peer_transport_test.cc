// The peer port: raft streams between transports (order, large batches, reconnects, bad
// input), gRPC calls served on the same port, snapshots, and forwarded requests.
#include "transport/peer_transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "store/snapshot_files.h"
#include "transport/transport_test_util.h"

namespace micedb::transport {
namespace {

using namespace std::chrono_literals;

class Recorder : public InboundHandler {
 public:
  void OnMessages(std::vector<raft::Message> msgs) override {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& m : msgs) got_.push_back(std::move(m));
    cv_.notify_all();
  }
  void OnSnapshot(raft::Message msg, store::StagedSnapshot staged) override {
    std::lock_guard<std::mutex> l(mu_);
    snapshots_.push_back(std::move(msg));
    snapshot_dirs_.push_back(staged.dir);
    staged_.push_back(std::move(staged));
    cv_.notify_all();
  }
  void OnForward(NodeId from, uint64_t id, ForwardRequest request) override {
    if (on_forward) on_forward(from, id, std::move(request));
  }
  void OnSnapshotSent(uint64_t, NodeId, bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    snapshots_sent_.push_back(ok);
    cv_.notify_all();
  }
  void OnUnreachable(NodeId) override {
    std::lock_guard<std::mutex> l(mu_);
    ++unreachable_;
    cv_.notify_all();
  }
  void OnRefused(NodeId by, const std::string& reason, bool keep_running) override {
    std::lock_guard<std::mutex> l(mu_);
    refusals_.push_back(
        fmt::format("{}: {}{}", by.value(), reason, keep_running ? " (retry)" : ""));
    cv_.notify_all();
  }
  std::vector<std::string> WaitRefusals(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, timeout, [&] { return !refusals_.empty(); });
    return refusals_;
  }

  // Waits until `n` messages have arrived; returns them.
  std::vector<raft::Message> WaitMessages(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, timeout, [&] { return got_.size() >= n; });
    return got_;
  }
  size_t messages() {
    std::lock_guard<std::mutex> l(mu_);
    return got_.size();
  }
  bool WaitUnreachable(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return unreachable_ > 0; });
  }
  bool WaitSnapshot(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return !snapshots_.empty(); });
  }
  // The staging directory of the first snapshot received (empty if none).
  std::vector<store::SnapshotFileMeta> staged_files() {
    std::lock_guard<std::mutex> l(mu_);
    return staged_.empty() ? std::vector<store::SnapshotFileMeta>{} : staged_.front().files;
  }
  std::string snapshot_dir() {
    std::lock_guard<std::mutex> l(mu_);
    return snapshot_dirs_.empty() ? "" : snapshot_dirs_.front();
  }
  // Waits for the outcome of the first snapshot sent; nullopt if none came in time.
  std::optional<bool> WaitSnapshotSent(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, timeout, [&] { return !snapshots_sent_.empty(); })) return std::nullopt;
    return snapshots_sent_.front();
  }

  std::function<void(NodeId, uint64_t, ForwardRequest)> on_forward;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raft::Message> got_;
  std::vector<raft::Message> snapshots_;
  std::vector<std::string> snapshot_dirs_;
  std::vector<store::StagedSnapshot> staged_;
  std::vector<bool> snapshots_sent_;
  int unreachable_ = 0;
  std::vector<std::string> refusals_;
};

// One node's side: a transport listening on a loopback port, with its gRPC server.
struct Endpoint {
  Endpoint(uint64_t id, int port = 0, size_t max_inbound_streams = 64, PeerCheck check = {},
           uint64_t incarnation = 0, uint32_t tick_ms = 0, uint32_t election_ticks = 0) {
    snap_dir = (std::filesystem::temp_directory_path() /
                fmt::format("transport_test_{}_{}_{}", ::getpid(), id, counter++))
                   .string();
    std::filesystem::create_directories(snap_dir);
    if (port == 0) port = FreePort();
    TransportOptions o;
    o.node_id = NodeId(id);
    o.snap_dir = snap_dir;
    o.listen_addr = fmt::format("127.0.0.1:{}", port);
    o.max_inbound_streams = max_inbound_streams;
    o.check_peer = std::move(check);
    o.incarnation = incarnation;
    o.tick_ms = tick_ms;
    o.election_ticks = election_ticks;
    transport = std::make_unique<PeerTransport>(o, &recorder);
    grpc::ServerBuilder builder;
    builder.RegisterService(transport->service());
    server = builder.BuildAndStart();
    status = transport->Listen(o.listen_addr, server.get());
  }
  static int FreePort() {
    asio::io_context io;
    asio::ip::tcp::acceptor acc(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return acc.local_endpoint().port();
  }
  ~Endpoint() {
    transport->StopListening();
    server->Shutdown(std::chrono::system_clock::now() + 200ms);
    transport->Shutdown();
    server->Wait();
    std::error_code ec;
    std::filesystem::remove_all(snap_dir, ec);
  }
  std::string addr() const { return fmt::format("127.0.0.1:{}", transport->port()); }

  static inline int counter = 0;
  std::string snap_dir;
  Recorder recorder;
  std::unique_ptr<PeerTransport> transport;
  std::unique_ptr<grpc::Server> server;
  Status status;
};

raft::Message Msg(uint64_t from, uint64_t to, uint64_t index, size_t payload = 0) {
  raft::Message m;
  m.set_type(raft::MSG_APP);
  m.set_from(from);
  m.set_to(to);
  m.set_region_id(1);
  m.set_index(index);
  if (payload > 0) m.add_entries()->set_data(std::string(payload, 'x'));
  return m;
}

TEST(PeerTransport, RaftStreamKeepsOrderAndAnswersGoBack) {
  Endpoint a(1), b(2);
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  ASSERT_TRUE(b.status.ok()) << b.status.ToString();
  a.transport->SetAddress(NodeId(2), b.addr());
  for (uint64_t i = 0; i < 100; i += 10) {
    std::vector<raft::Message> batch;
    for (uint64_t k = i; k < i + 10; ++k) batch.push_back(Msg(1, 2, k));
    a.transport->SendBatch(std::move(batch));
  }
  auto got = b.recorder.WaitMessages(100);
  ASSERT_EQ(got.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(got[i].index(), i);
  // B learned where A listens from A's stream, without being told.
  b.transport->Send(Msg(2, 1, 7));
  auto back = a.recorder.WaitMessages(1);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].index(), 7u);
  EXPECT_EQ(a.transport->dropped_messages(), 0u);
}

TEST(PeerTransport, BatchesLargerThanTheSocketBufferArriveWhole) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  // Far more than a socket takes at once: most is written by the I/O thread.
  for (uint64_t i = 0; i < 64; ++i) {
    std::vector<raft::Message> batch;
    for (uint64_t k = 0; k < 4; ++k) batch.push_back(Msg(1, 2, i * 4 + k, 64 << 10));
    a.transport->SendBatch(std::move(batch));
  }
  auto got = b.recorder.WaitMessages(256, 30s);
  ASSERT_EQ(got.size(), 256u);
  for (uint64_t i = 0; i < 256; ++i) {
    EXPECT_EQ(got[i].index(), i);
    EXPECT_EQ(got[i].entries(0).data().size(), 64u << 10);
  }
}

TEST(PeerTransport, HeartbeatsPassAHugeAppendAndTheAppendArrivesWhole) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  // Connect first, so that both sends below go through the same open stream.
  a.transport->Send(Msg(1, 2, 1));
  ASSERT_EQ(b.recorder.WaitMessages(1).size(), 1u);
  // A 64 MiB append goes as 256 fragments; a heartbeat queued after it goes out before the
  // append's remaining fragments, not 64 MiB later.
  a.transport->Send(Msg(1, 2, 2, 64 << 20));
  raft::Message hb;
  hb.set_type(raft::MSG_HEARTBEAT);
  hb.set_from(1);
  hb.set_to(2);
  hb.set_region_id(1);
  hb.set_commit(9);
  a.transport->Send(hb);
  a.transport->Send(Msg(1, 2, 3));
  auto got = b.recorder.WaitMessages(4, 60s);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[1].type(), raft::MSG_HEARTBEAT);
  EXPECT_EQ(got[1].commit(), 9u);
  // Appends keep their order, and the long one arrives whole.
  EXPECT_EQ(got[2].index(), 2u);
  ASSERT_EQ(got[2].entries_size(), 1);
  EXPECT_EQ(got[2].entries(0).data(), std::string(64 << 20, 'x'));
  EXPECT_EQ(got[3].index(), 3u);
}

TEST(PeerTransport, ReconnectsWhenTheDestinationComesBack) {
  Endpoint a(1);
  int port;
  {
    Endpoint b(2);
    port = b.transport->port();
    a.transport->SetAddress(NodeId(2), b.addr());
    a.transport->Send(Msg(1, 2, 1));
    ASSERT_EQ(b.recorder.WaitMessages(1).size(), 1u);
  }
  // B is gone: sending fails and raft is told.
  a.transport->Send(Msg(1, 2, 2));
  EXPECT_TRUE(a.recorder.WaitUnreachable());
  Endpoint b2(2, port);
  ASSERT_TRUE(b2.status.ok()) << b2.status.ToString();
  // Raft would resend; so does this test, until the new stream is up (backoff <= 1 s).
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (b2.recorder.messages() == 0 && std::chrono::steady_clock::now() < deadline) {
    a.transport->Send(Msg(1, 2, 3));
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GT(b2.recorder.messages(), 0u);
}

TEST(PeerTransport, GrpcIsServedOnThePeerPort) {
  Endpoint b(2);
  auto channel = grpc::CreateChannel(b.addr(), grpc::InsecureChannelCredentials());
  SnapshotDone done;
  bool written = false;
  grpc::Status st = SendLastSnapshotChunk(channel, Msg(1, 2, 9), &done, &written);
  ASSERT_TRUE(written);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(done.ok()) << done.error();
  EXPECT_TRUE(b.recorder.WaitSnapshot());
}

TEST(PeerTransport, BadStreamsAreClosedAndOthersCarryOn) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  asio::io_context io;
  auto connect = [&] {
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                      static_cast<uint16_t>(b.transport->port())));
    return s;
  };
  auto closed_by_peer = [](asio::ip::tcp::socket& s) {
    char c;
    asio::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  };
  {
    // A frame over the size limit.
    auto s = connect();
    std::string bytes = "MICERAFT";
    PutFixed32(&bytes, 0xFFFFFFF0u);
    bytes.push_back(1);
    asio::write(s, asio::buffer(bytes));
    EXPECT_TRUE(closed_by_peer(s));
  }
  {
    // A frame that does not parse.
    auto s = connect();
    std::string bytes = "MICERAFT";
    PutFixed32(&bytes, 3);
    bytes.push_back(1);
    bytes += "\xff\xff\xff";
    asio::write(s, asio::buffer(bytes));
    EXPECT_TRUE(closed_by_peer(s));
  }
  {
    // Fragments whose frame claims more than the limit.
    auto s = connect();
    std::string bytes = "MICERAFT";
    std::string inner;
    PutFixed32(&inner, 0xFFFFFFF0u);
    inner.push_back(1);
    PutFixed32(&bytes, static_cast<uint32_t>(inner.size()));
    bytes.push_back(4);
    bytes += inner;
    asio::write(s, asio::buffer(bytes));
    EXPECT_TRUE(closed_by_peer(s));
  }
  {
    // Fragments that run past the frame they announce.
    auto s = connect();
    std::string bytes = "MICERAFT";
    std::string inner;
    PutFixed32(&inner, 2);
    inner.push_back(1);
    inner += "abc";
    PutFixed32(&bytes, static_cast<uint32_t>(inner.size()));
    bytes.push_back(4);
    bytes += inner;
    asio::write(s, asio::buffer(bytes));
    EXPECT_TRUE(closed_by_peer(s));
  }
  a.transport->Send(Msg(1, 2, 5));
  auto got = b.recorder.WaitMessages(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].index(), 5u);
}

size_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

TEST(PeerTransport, AnnouncedFrameLengthsCostNoMemoryUntilTheBytesArrive) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  asio::io_context io;
  const size_t before = RssBytes();
  // Eight streams each announce a frame just under the 256 MiB limit and send 100 bytes of
  // it. The receiver once sized its buffer to the announcement: 2 GiB for 8 x 113 bytes.
  std::vector<asio::ip::tcp::socket> streams;
  for (int i = 0; i < 8; ++i) {
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                      static_cast<uint16_t>(b.transport->port())));
    std::string bytes = "MICERAFT";
    PutFixed32(&bytes, (256u << 20) - 16);
    bytes.push_back(1);
    bytes += std::string(100, 'x');
    asio::write(s, asio::buffer(bytes));
    streams.push_back(std::move(s));
  }
  size_t peak = 0;
  for (int i = 0; i < 20; ++i) {
    peak = std::max(peak, RssBytes());
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_LT(peak, before + (64u << 20)) << "RSS grew from " << before << " to " << peak;
  // The node carries on.
  a.transport->Send(Msg(1, 2, 7));
  auto got = b.recorder.WaitMessages(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].index(), 7u);
}

TEST(PeerTransport, ARefusedSenderIsToldWhyAndNothingItSentIsDelivered) {
  std::atomic<uint64_t> seen_incarnation{0};
  Endpoint b(2, 0, 64, [&](NodeId from, uint64_t, uint64_t incarnation) {
    seen_incarnation = incarnation;
    return from == NodeId(1) ? std::optional<std::string>("you are not welcome")
                             : std::optional<std::string>();
  });
  Endpoint a(1, 0, 64, {}, /*incarnation=*/42);
  a.transport->SetAddress(NodeId(2), b.addr());
  a.transport->Send(Msg(1, 2, 5));
  auto refusals = a.recorder.WaitRefusals();
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0], "2: you are not welcome");
  EXPECT_EQ(seen_incarnation.load(), 42u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(b.recorder.messages(), 0u);
  // Someone else still gets in.
  Endpoint c(3);
  c.transport->SetAddress(NodeId(2), b.addr());
  c.transport->Send(Msg(3, 2, 9));
  ASSERT_EQ(b.recorder.WaitMessages(1).size(), 1u);
}

// Issue 13 item 3: a voter ticking at half the length keeps its vote promise for half the time
// the leader's lease counts on. A peer with other raft timing is refused, the reason naming both
// sides' values; neither side is told to stop, and a peer with the same timing gets in.
TEST(PeerTransport, APeerWithOtherRaftTimingIsRefused) {
  Endpoint b(2, 0, 64, {}, 0, /*tick_ms=*/100, /*election_ticks=*/10);
  Endpoint a(1, 0, 64, {}, 0, /*tick_ms=*/50, /*election_ticks=*/10);
  a.transport->SetAddress(NodeId(2), b.addr());
  a.transport->Send(Msg(1, 2, 5));
  auto refusals = a.recorder.WaitRefusals();
  ASSERT_FALSE(refusals.empty()) << "a peer at half the tick length was let in";
  EXPECT_EQ(refusals[0],
            "2: node 1 runs --raft-tick-ms=50 --election-ticks=10, node 2 runs "
            "--raft-tick-ms=100 --election-ticks=10: every node must run the same values "
            "(leader leases count on them); restart the node that differs with the cluster's "
            "values (retry)");
  b.transport->SetAddress(NodeId(1), a.addr());
  b.transport->Send(Msg(2, 1, 6));
  ASSERT_FALSE(b.recorder.WaitRefusals().empty()) << "refused both ways";
  EXPECT_NE(b.recorder.WaitRefusals()[0].find("--election-ticks=10"), std::string::npos);
  EXPECT_EQ(b.recorder.messages(), 0u);
  EXPECT_EQ(a.recorder.messages(), 0u);
  // Other election ticks are refused too; the same values get in.
  Endpoint c(3, 0, 64, {}, 0, 100, 20);
  c.transport->SetAddress(NodeId(2), b.addr());
  c.transport->Send(Msg(3, 2, 7));
  ASSERT_FALSE(c.recorder.WaitRefusals().empty());
  Endpoint d(4, 0, 64, {}, 0, 100, 10);
  d.transport->SetAddress(NodeId(2), b.addr());
  d.transport->Send(Msg(4, 2, 9));
  auto got = b.recorder.WaitMessages(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].index(), 9u);
}

TEST(PeerTransport, InboundStreamsBeyondTheLimitAreClosed) {
  Endpoint b(2, 0, /*max_inbound_streams=*/2);
  asio::io_context io;
  auto open = [&] {
    asio::ip::tcp::socket s(io);
    s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                      static_cast<uint16_t>(b.transport->port())));
    asio::write(s, asio::buffer(std::string("MICERAFT")));
    return s;
  };
  auto first = open();
  auto second = open();
  // Give the first two time to be accepted (the third must be refused, not raced).
  std::this_thread::sleep_for(200ms);
  auto third = open();
  char c;
  asio::error_code ec;
  third.read_some(asio::buffer(&c, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  // Once one closes, a new stream is taken again.
  first.close();
  std::this_thread::sleep_for(200ms);
  auto fourth = open();
  fourth.non_blocking(true);
  std::this_thread::sleep_for(200ms);
  fourth.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::would_block) << ec.message();
}

raft::Message SnapMsg(uint64_t from, uint64_t to, uint64_t index) {
  raft::Message m;
  m.set_type(raft::MSG_SNAP);
  m.set_from(from);
  m.set_to(to);
  m.set_region_id(1);
  m.mutable_snapshot()->mutable_metadata()->set_index(index);
  return m;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(PeerTransport, SnapshotFilesAreExportedOffTheCallerAndStagedAtTheReceiver) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  // Several chunks for one file, one chunk for the other.
  const std::string big(2 * (1 << 20) + 123, 'd');
  const std::string small = "write-cf";
  auto held = std::make_shared<int>(0);  // stands for the engine view the store's closure holds
  std::weak_ptr<int> held_weak = held;
  std::thread::id export_thread;
  store::SnapshotSource source;
  source.export_files = [&, held = std::move(held)](
                            const std::string& dir) -> Result<std::vector<store::SnapshotFile>> {
    export_thread = std::this_thread::get_id();
    std::filesystem::create_directories(dir);
    std::vector<store::SnapshotFile> files = {{storage::Cf::kDefault, dir + "/a"},
                                              {storage::Cf::kWrite, dir + "/b"}};
    std::ofstream(files[0].path, std::ios::binary) << big;
    std::ofstream(files[1].path, std::ios::binary) << small;
    return files;
  };
  a.transport->SendSnapshot(SnapMsg(1, 2, 42), std::move(source));

  ASSERT_EQ(a.recorder.WaitSnapshotSent(), std::optional<bool>(true));
  EXPECT_NE(export_thread, std::this_thread::get_id());
  EXPECT_TRUE(held_weak.expired());
  ASSERT_TRUE(b.recorder.WaitSnapshot());
  const std::string dir = b.recorder.snapshot_dir();
  EXPECT_EQ(ReadFile(store::SnapshotFilePath(dir, storage::Cf::kDefault, 0)), big);
  EXPECT_EQ(ReadFile(store::SnapshotFilePath(dir, storage::Cf::kWrite, 0)), small);
  EXPECT_FALSE(std::filesystem::exists(store::SnapshotFilePath(dir, storage::Cf::kLock, 0)));
  // The receiver hands on the sender's list: which files, their lengths and checksums.
  auto files = b.recorder.staged_files();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].cf(), static_cast<uint32_t>(storage::Cf::kDefault));
  EXPECT_EQ(files[0].size(), big.size());
  EXPECT_EQ(files[0].crc32c(), crc32c::Value(big));
  EXPECT_EQ(files[1].cf(), static_cast<uint32_t>(storage::Cf::kWrite));
  EXPECT_EQ(files[1].crc32c(), crc32c::Value(small));
  EXPECT_TRUE(store::VerifyStagedFiles(dir, {files.begin(), files.end()}).ok());
  // The sender's staging directory is gone.
  for (const auto& e : std::filesystem::directory_iterator(a.snap_dir)) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

// A stream whose files differ from the list in its last chunk is refused, and the store never
// sees it: a file that never arrived, or one whose whole-file checksum differs.
TEST(PeerTransport, ASnapshotThatDiffersFromItsFileListIsRefused) {
  Endpoint b(2);
  auto channel = grpc::CreateChannel(b.addr(), grpc::InsecureChannelCredentials());
  auto stub = RaftTransport::NewStub(channel);
  const std::string data = "some sst bytes";
  for (const bool missing : {true, false}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    SnapshotDone done;
    auto writer = stub->SendSnapshot(&ctx, &done);
    SnapshotChunk chunk;
    chunk.set_from_node(1);
    chunk.set_region_id(1);
    chunk.set_cf(static_cast<uint32_t>(storage::Cf::kDefault));
    chunk.set_data(data);
    chunk.set_crc32c(crc32c::Mask(crc32c::Value(chunk.data())));
    ASSERT_TRUE(writer->Write(chunk));
    SnapshotChunk last;
    last.set_from_node(1);
    last.set_region_id(1);
    last.set_last(true);
    *last.mutable_msg() = SnapMsg(1, 2, 42);
    store::SnapshotFileMeta* m = last.add_files();
    m->set_cf(static_cast<uint32_t>(storage::Cf::kDefault));
    m->set_size(data.size());
    m->set_crc32c(crc32c::Value(data) ^ (missing ? 0 : 1));
    if (missing) {
      store::SnapshotFileMeta* lost = last.add_files();
      lost->set_cf(static_cast<uint32_t>(storage::Cf::kWrite));
      lost->set_size(10);
    }
    ASSERT_TRUE(writer->Write(last));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    EXPECT_FALSE(done.ok());
    EXPECT_THAT(done.error(), ::testing::HasSubstr(missing ? "never arrived" : "sender sent"));
  }
  EXPECT_FALSE(b.recorder.WaitSnapshot(200ms));
  for (const auto& e : std::filesystem::directory_iterator(b.snap_dir)) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

TEST(PeerTransport, AFailedSnapshotExportIsReported) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  store::SnapshotSource source;
  source.export_files = [](const std::string&) -> Result<std::vector<store::SnapshotFile>> {
    return Status::IoError("disk full");
  };
  a.transport->SendSnapshot(SnapMsg(1, 2, 42), std::move(source));
  EXPECT_EQ(a.recorder.WaitSnapshotSent(), std::optional<bool>(false));
  EXPECT_FALSE(b.recorder.WaitSnapshot(200ms));
}

// Waits for one forwarded request's outcome.
struct ForwardOutcome {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<ForwardResponse>> result;
  PeerTransport::ForwardCallback Callback() {
    return [this](Result<ForwardResponse> r) {
      std::lock_guard<std::mutex> l(mu);
      result = std::move(r);
      cv.notify_all();
    };
  }
  Result<ForwardResponse> Wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, 10s, [&] { return result.has_value(); });
    if (!result) return Status::Internal("no outcome");
    return *result;
  }
};

TEST(PeerTransport, ForwardedRequestsAreAnsweredOnTheCallersStream) {
  Endpoint a(1), b(2);
  a.transport->SetAddress(NodeId(2), b.addr());
  b.recorder.on_forward = [&](NodeId from, uint64_t id, const ForwardRequest& req) {
    EXPECT_EQ(from, NodeId(1));
    ForwardResponse resp;
    resp.mutable_response()->mutable_kv()->set_bulk(
        fmt::format("echo:{}", req.request().header().request_id()));
    b.transport->ReplyForward(from, id, std::move(resp));  // B learned A's address
  };
  std::vector<std::unique_ptr<ForwardOutcome>> outcomes;
  for (int i = 0; i < 20; ++i) {
    ForwardRequest req;
    req.mutable_request()->mutable_header()->set_request_id(i);
    outcomes.push_back(std::make_unique<ForwardOutcome>());
    a.transport->Forward(NodeId(2), std::move(req), 10s, outcomes.back()->Callback());
  }
  for (int i = 0; i < 20; ++i) {
    auto r = outcomes[i]->Wait();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->response().kv().bulk(), fmt::format("echo:{}", i));
  }
}

TEST(PeerTransport, ForwardedRequestsTimeOutOrFailWithTheConnection) {
  Endpoint a(1);
  {
    Endpoint b(2);
    a.transport->SetAddress(NodeId(2), b.addr());
    ForwardOutcome unanswered;
    a.transport->Forward(NodeId(2), ForwardRequest(), 100ms, unanswered.Callback());
    EXPECT_EQ(unanswered.Wait().status().code(), StatusCode::kTimedOut);

    ForwardOutcome lost;
    a.transport->Forward(NodeId(2), ForwardRequest(), 30s, lost.Callback());
    // B (which never answers) goes away.
    std::this_thread::sleep_for(50ms);
    b.transport->StopListening();
    b.transport->Shutdown();
    EXPECT_EQ(lost.Wait().status().code(), StatusCode::kUnavailable);
  }
  ForwardOutcome unknown;
  a.transport->Forward(NodeId(3), ForwardRequest(), 1s, unknown.Callback());
  EXPECT_EQ(unknown.Wait().status().code(), StatusCode::kUnavailable);
}

TEST(PeerTransport, ListenFailsOnAPortInUse) {
  Endpoint a(1);
  Endpoint b(2, a.transport->port());
  EXPECT_EQ(b.status.code(), StatusCode::kIoError) << b.status.ToString();
}

}  // namespace
}  // namespace micedb::transport
