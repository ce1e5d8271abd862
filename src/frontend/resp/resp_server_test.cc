// End-to-end tests of the RESP server: a real server on 127.0.0.1 (port 0) over LocalBackend
// and MemEngine, spoken to through real sockets.
#include "frontend/resp/resp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "kv/local_backend.h"
#include "storage/mem_engine.h"

namespace micedb::resp {
namespace {

// A parsed reply. type is the RESP type byte; "null" replies have type '_' (RESP3) or
// '$'/'*' with is_null set (RESP2).
struct Reply {
  char type = 0;
  bool is_null = false;
  std::string str;  // simple string, error, bulk, verbatim (without "txt:"), double
  int64_t integer = 0;
  std::vector<Reply> elems;  // array, set, map (key, value, key, value...)
};

// Parses one reply from `buf` at *pos; false when incomplete.
bool ParseReply(const std::string& buf, size_t* pos, Reply* out) {
  if (*pos >= buf.size()) return false;
  const size_t eol = buf.find("\r\n", *pos);
  if (eol == std::string::npos) return false;
  const char type = buf[*pos];
  const std::string line = buf.substr(*pos + 1, eol - *pos - 1);
  size_t next = eol + 2;
  out->type = type;
  switch (type) {
    case '+':
    case '-':
    case ',':
      out->str = line;
      break;
    case ':':
      out->integer = std::stoll(line);
      break;
    case '#':
      out->integer = line == "t";
      break;
    case '_':
      out->is_null = true;
      break;
    case '$':
    case '=': {
      const long long len = std::stoll(line);
      if (len < 0) {
        out->is_null = true;
        break;
      }
      if (buf.size() < next + static_cast<size_t>(len) + 2) return false;
      out->str = buf.substr(next, static_cast<size_t>(len));
      if (type == '=') out->str = out->str.substr(4);
      next += static_cast<size_t>(len) + 2;
      break;
    }
    case '*':
    case '~':
    case '%': {
      long long n = std::stoll(line);
      if (n < 0) {
        out->is_null = true;
        break;
      }
      if (type == '%') n *= 2;
      out->elems.clear();
      for (long long i = 0; i < n; ++i) {
        Reply elem;
        if (!ParseReply(buf, &next, &elem)) return false;
        out->elems.push_back(std::move(elem));
      }
      break;
    }
    default:
      ADD_FAILURE() << "bad reply type " << type;
      return false;
  }
  *pos = next;
  return true;
}

std::string Encode(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// A blocking test client over a real socket.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Client() { close(fd_); }

  bool connected() const { return connected_; }

  void SendRaw(std::string_view bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }
  void Send(const std::vector<std::string>& args) { SendRaw(Encode(args)); }

  // The next reply; fails the test on timeout or EOF.
  Reply Read() {
    Reply reply;
    while (true) {
      size_t pos = 0;
      if (ParseReply(buf_, &pos, &reply)) {
        buf_.erase(0, pos);
        return reply;
      }
      if (!Fill()) {
        ADD_FAILURE() << "connection closed or timed out; have: " << buf_;
        return Reply{};
      }
    }
  }

  Reply Call(const std::vector<std::string>& args) {
    Send(args);
    return Read();
  }

  // True when the server closes the connection (EOF or reset) within the receive timeout,
  // after any buffered replies.
  bool Closed() {
    while (true) {
      char tmp[4096];
      const ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  bool Fill() {
    char tmp[65536];
    const ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// Wraps a backend to record read modes, optionally fail, and answer from another thread.
class TestBackend final : public kv::KvBackend {
 public:
  explicit TestBackend(kv::KvBackend* inner) : inner_(inner) {}
  ~TestBackend() override {
    for (std::thread& t : threads_) t.join();
  }

  void Execute(kv::Command cmd, kv::ReadMode mode, Callback done) override {
    last_mode_ = mode;
    executes_++;
    if (cmd.has_txn()) txns_++;
    if (!fail_with_.ok()) {
      done(fail_with_);
      return;
    }
    if (!async_) {
      inner_->Execute(std::move(cmd), mode, std::move(done));
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([this, cmd = std::move(cmd), mode, done = std::move(done)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      inner_->Execute(std::move(cmd), mode, std::move(done));
    });
  }

  std::atomic<kv::ReadMode> last_mode_{kv::ReadMode::kLinearizable};
  std::atomic<int> executes_{0};
  std::atomic<int> txns_{0};
  Status fail_with_;
  std::atomic<bool> async_{false};

 private:
  kv::KvBackend* inner_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

class RespServerTest : public testing::Test {
 protected:
  void SetUp() override {}

  void StartServer(ServerOptions options = {}) {
    local_ = std::move(kv::LocalBackend::Open(&engine_, &clock_)).value();
    backend_ = std::make_unique<TestBackend>(local_.get());
    options.host = "127.0.0.1";
    options.port = 0;
    options.clock = &clock_;
    server_ = std::make_unique<RespServer>(options, backend_.get());
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  std::unique_ptr<Client> Connect() {
    auto c = std::make_unique<Client>(server_->port());
    EXPECT_TRUE(c->connected());
    return c;
  }

  ManualClock clock_;
  storage::MemEngine engine_;
  std::unique_ptr<kv::LocalBackend> local_;
  std::unique_ptr<TestBackend> backend_;
  std::unique_ptr<RespServer> server_;
};

TEST_F(RespServerTest, BasicCommandsAndRedisErrorTexts) {
  StartServer();
  auto c = Connect();
  EXPECT_EQ(c->Call({"PING"}).str, "PONG");
  EXPECT_EQ(c->Call({"PING", "hi"}).str, "hi");
  EXPECT_EQ(c->Call({"SET", "a", "1"}).str, "OK");
  EXPECT_EQ(c->Call({"GET", "a"}).str, "1");
  EXPECT_TRUE(c->Call({"GET", "nope"}).is_null);
  EXPECT_EQ(c->Call({"INCR", "a"}).integer, 2);
  EXPECT_EQ(c->Call({"INCRBY", "a", "10"}).integer, 12);
  EXPECT_EQ(c->Call({"DECRBY", "a", "2"}).integer, 10);
  EXPECT_EQ(c->Call({"APPEND", "a", "x"}).integer, 3);
  EXPECT_EQ(c->Call({"INCR", "a"}).str, "ERR value is not an integer or out of range");
  EXPECT_EQ(c->Call({"INCRBY", "a", "1.5"}).str, "ERR value is not an integer or out of range");
  EXPECT_EQ(c->Call({"GETRANGE", "a", "-2", "-1"}).str, "0x");
  EXPECT_EQ(c->Call({"STRLEN", "a"}).integer, 3);
  EXPECT_EQ(c->Call({"SETNX", "a", "z"}).integer, 0);
  EXPECT_EQ(c->Call({"GETSET", "a", "new"}).str, "10x");
  EXPECT_EQ(c->Call({"MSET", "b", "2", "c", "3"}).str, "OK");
  EXPECT_EQ(c->Call({"MSET", "b", "2", "c"}).str,
            "ERR wrong number of arguments for 'mset' command");
  Reply mget = c->Call({"MGET", "a", "b", "missing"});
  ASSERT_EQ(mget.elems.size(), 3u);
  EXPECT_EQ(mget.elems[1].str, "2");
  EXPECT_TRUE(mget.elems[2].is_null);
  EXPECT_EQ(c->Call({"EXISTS", "a", "b", "missing"}).integer, 2);
  EXPECT_EQ(c->Call({"TYPE", "a"}).str, "string");
  EXPECT_EQ(c->Call({"TYPE", "missing"}).str, "none");
  EXPECT_EQ(c->Call({"DBSIZE"}).integer, 3);
  EXPECT_EQ(c->Call({"DEL", "a", "missing"}).integer, 1);
  EXPECT_EQ(c->Call({"UNLINK", "b"}).integer, 1);
  EXPECT_EQ(c->Call({"GET"}).str, "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c->Call({"FOO", "bar", "baz"}).str,
            "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ");
  EXPECT_EQ(c->Call({"SELECT", "0"}).str, "OK");
  EXPECT_EQ(c->Call({"SELECT", "1"}).str, "ERR DB index is out of range");
  EXPECT_EQ(c->Call({"ECHO", "x"}).str, "x");
  EXPECT_EQ(c->Call({"FLUSHALL"}).str, "OK");
  EXPECT_EQ(c->Call({"DBSIZE"}).integer, 0);
}

TEST_F(RespServerTest, SetOptionsAndErrors) {
  StartServer();
  auto c = Connect();
  EXPECT_EQ(c->Call({"SET", "k", "v", "NX", "XX"}).str, "ERR syntax error");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX", "10", "PX", "100"}).str, "ERR syntax error");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX", "10", "KEEPTTL"}).str, "ERR syntax error");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX"}).str, "ERR syntax error");
  EXPECT_EQ(c->Call({"SET", "k", "v", "FOO"}).str, "ERR syntax error");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX", "abc"}).str,
            "ERR value is not an integer or out of range");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX", "0"}).str, "ERR invalid expire time in 'set' command");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX", "-5"}).str, "ERR invalid expire time in 'set' command");
  EXPECT_EQ(c->Call({"SET", "k", "v", "EX", "9223372036854775807"}).str,
            "ERR invalid expire time in 'set' command");
  EXPECT_EQ(c->Call({"SET", "k", "v", "nx", "get"}).type, '$');  // null: was absent
  EXPECT_EQ(c->Call({"SET", "k", "v2", "NX", "GET"}).str, "v");
  EXPECT_EQ(c->Call({"SET", "k", "v3", "XX", "PX", "1500"}).str, "OK");
  EXPECT_EQ(c->Call({"PTTL", "k"}).integer, 1500);
  EXPECT_EQ(c->Call({"SET", "k", "v4", "KEEPTTL"}).str, "OK");
  EXPECT_EQ(c->Call({"PTTL", "k"}).integer, 1500);
  const int64_t at = clock_.NowWallMillis() / 1000 + 100;
  EXPECT_EQ(c->Call({"SET", "k", "v5", "EXAT", std::to_string(at)}).str, "OK");
  EXPECT_GT(c->Call({"TTL", "k"}).integer, 98);
}

TEST_F(RespServerTest, ExpiryWithManualClock) {
  StartServer();
  auto c = Connect();
  c->Call({"SET", "k", "v"});
  EXPECT_EQ(c->Call({"TTL", "k"}).integer, -1);
  EXPECT_EQ(c->Call({"TTL", "missing"}).integer, -2);
  EXPECT_EQ(c->Call({"EXPIRE", "k", "100"}).integer, 1);
  EXPECT_EQ(c->Call({"TTL", "k"}).integer, 100);
  clock_.Advance(std::chrono::seconds(40));
  EXPECT_EQ(c->Call({"TTL", "k"}).integer, 60);
  EXPECT_EQ(c->Call({"EXPIRE", "k", "10", "GT"}).integer, 0);
  EXPECT_EQ(c->Call({"EXPIRE", "k", "10", "LT"}).integer, 1);
  EXPECT_EQ(c->Call({"EXPIRE", "k", "10", "NX", "XX"}).str,
            "ERR NX and XX, GT or LT options at the same time are not compatible");
  EXPECT_EQ(c->Call({"EXPIRE", "k", "10", "GT", "LT"}).str,
            "ERR GT and LT options at the same time are not compatible");
  EXPECT_EQ(c->Call({"EXPIRE", "k", "10", "YY"}).str, "ERR Unsupported option YY");
  EXPECT_EQ(c->Call({"EXPIRE", "k", "9223372036854775807"}).str,
            "ERR invalid expire time in 'expire' command");
  EXPECT_EQ(c->Call({"PERSIST", "k"}).integer, 1);
  EXPECT_EQ(c->Call({"PEXPIRE", "k", "500"}).integer, 1);
  clock_.Advance(std::chrono::milliseconds(500));
  EXPECT_TRUE(c->Call({"GET", "k"}).is_null);
  EXPECT_EQ(local_->ExpireCycle(10).value_or(-1), 1);
  c->Call({"SET", "gone", "v"});
  EXPECT_EQ(c->Call({"EXPIRE", "gone", "-1"}).integer, 1);
  EXPECT_EQ(c->Call({"EXISTS", "gone"}).integer, 0);
}

TEST_F(RespServerTest, PipelinedCommandsAnswerInOrder) {
  StartServer();
  auto c = Connect();
  std::string batch;
  for (int i = 0; i < 200; ++i) batch += Encode({"INCR", "counter"});
  batch += "PING\r\n";  // inline, in the same pipeline
  c->SendRaw(batch);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(c->Read().integer, i + 1);
  EXPECT_EQ(c->Read().str, "PONG");
}

TEST_F(RespServerTest, PipelineThroughAnAsynchronousBackend) {
  StartServer();
  backend_->async_ = true;
  auto c = Connect();
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += Encode({"INCR", "n"});
  c->SendRaw(batch);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(c->Read().integer, i + 1);
}

// Data commands that arrive together run as one Txn (one backend call, one raft entry),
// with each command seeing the ones before it, and each answered in its own place.
TEST_F(RespServerTest, PipelinedDataCommandsRunTogetherInOrder) {
  StartServer();
  backend_->async_ = true;
  auto c = Connect();
  std::string batch;
  batch += Encode({"SET", "a", "1"});
  batch += Encode({"GET", "a"});
  batch += Encode({"INCR", "a"});
  batch += Encode({"SET", "b", "x", "EX", "0"});  // refused by the gateway, in its place
  batch += Encode({"GET", "a"});
  batch += Encode({"APPEND", "a", "z"});
  batch += Encode({"INCR", "a"});  // fails alone when run
  batch += Encode({"MGET", "a", "missing"});
  c->SendRaw(batch);
  EXPECT_EQ(c->Read().str, "OK");
  EXPECT_EQ(c->Read().str, "1");
  EXPECT_EQ(c->Read().integer, 2);
  EXPECT_EQ(c->Read().str, "ERR invalid expire time in 'set' command");
  EXPECT_EQ(c->Read().str, "2");
  EXPECT_EQ(c->Read().integer, 2);
  EXPECT_EQ(c->Read().str, "ERR value is not an integer or out of range");
  Reply mget = c->Read();
  ASSERT_EQ(mget.elems.size(), 2u);
  EXPECT_EQ(mget.elems[0].str, "2z");
  EXPECT_TRUE(mget.elems[1].is_null);
  // Usually all in one read, so one call; never one per command.
  EXPECT_LT(backend_->executes_.load(), 7);
  EXPECT_GE(backend_->txns_.load(), 1);
}

// A command that changes the connection (HELLO, WATCH, MULTI...) waits for the pipelined
// commands before it to be answered, and those after it start only once it is done.
TEST_F(RespServerTest, ConnectionCommandsInAPipelineKeepTheirPlace) {
  StartServer();
  backend_->async_ = true;
  auto c = Connect();
  std::string batch;
  batch += Encode({"GET", "missing"});
  batch += Encode({"GET", "missing"});
  batch += Encode({"HELLO", "3"});
  batch += Encode({"GET", "missing"});
  batch += Encode({"GET", "missing"});
  batch += Encode({"SET", "w", "1"});
  batch += Encode({"WATCH", "w"});
  batch += Encode({"SET", "w", "2"});
  batch += Encode({"GET", "w"});
  batch += Encode({"MULTI"});
  batch += Encode({"SET", "x", "1"});
  batch += Encode({"EXEC"});
  batch += Encode({"GET", "x"});
  c->SendRaw(batch);
  Reply r = c->Read();
  EXPECT_EQ(r.type, '$');  // RESP2 null
  EXPECT_TRUE(r.is_null);
  EXPECT_EQ(c->Read().type, '$');
  EXPECT_EQ(c->Read().type, '%');  // HELLO's map
  EXPECT_EQ(c->Read().type, '_');  // RESP3 null
  EXPECT_EQ(c->Read().type, '_');
  EXPECT_EQ(c->Read().str, "OK");
  EXPECT_EQ(c->Read().str, "OK");  // WATCH
  EXPECT_EQ(c->Read().str, "OK");  // the watched key changes
  EXPECT_EQ(c->Read().str, "2");
  EXPECT_EQ(c->Read().str, "OK");      // MULTI
  EXPECT_EQ(c->Read().str, "QUEUED");  // SET x 1
  EXPECT_TRUE(c->Read().is_null);      // EXEC: aborted by the watch
  EXPECT_EQ(c->Read().type, '_');      // x was never set
}

// A run is one raft entry: large commands are not joined into one.
TEST_F(RespServerTest, LargePipelinedCommandsRunApart) {
  StartServer();
  auto c = Connect();
  const std::string big(600 << 10, 'v');
  std::string batch;
  for (int i = 0; i < 3; ++i) batch += Encode({"SET", "big" + std::to_string(i), big});
  c->SendRaw(batch);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c->Read().str, "OK");
  EXPECT_EQ(backend_->txns_.load(), 0);
  EXPECT_EQ(c->Call({"STRLEN", "big2"}).integer, 600 << 10);
}

TEST_F(RespServerTest, AFailedPipelinedRunFailsEachOfItsCommands) {
  StartServer();
  backend_->fail_with_ = Status::Unavailable("no leader");
  auto c = Connect();
  std::string batch;
  batch += Encode({"SET", "a", "1"});
  batch += Encode({"PING"});
  batch += Encode({"SET", "b", "1"});
  batch += Encode({"GET", "a"});
  c->SendRaw(batch);
  EXPECT_EQ(c->Read().str, "TRYAGAIN no leader");
  EXPECT_EQ(c->Read().str, "PONG");
  EXPECT_EQ(c->Read().str, "TRYAGAIN no leader");
  EXPECT_EQ(c->Read().str, "TRYAGAIN no leader");
}

TEST_F(RespServerTest, MultiExec) {
  StartServer();
  auto c = Connect();
  EXPECT_EQ(c->Call({"MULTI"}).str, "OK");
  EXPECT_EQ(c->Call({"MULTI"}).str, "ERR MULTI calls can not be nested");
  EXPECT_EQ(c->Call({"SET", "a", "abc"}).str, "QUEUED");
  EXPECT_EQ(c->Call({"INCR", "a"}).str, "QUEUED");
  EXPECT_EQ(c->Call({"SET", "b", "1", "BADOPT"}).str, "QUEUED");
  EXPECT_EQ(c->Call({"PING"}).str, "QUEUED");
  EXPECT_EQ(c->Call({"GET", "a"}).str, "QUEUED");
  Reply exec = c->Call({"EXEC"});
  ASSERT_EQ(exec.type, '*');
  ASSERT_EQ(exec.elems.size(), 5u);
  EXPECT_EQ(exec.elems[0].str, "OK");
  EXPECT_EQ(exec.elems[1].str, "ERR value is not an integer or out of range");
  EXPECT_EQ(exec.elems[2].str, "ERR syntax error");
  EXPECT_EQ(exec.elems[3].str, "PONG");
  EXPECT_EQ(exec.elems[4].str, "abc");
  EXPECT_EQ(c->Call({"EXEC"}).str, "ERR EXEC without MULTI");
  EXPECT_EQ(c->Call({"DISCARD"}).str, "ERR DISCARD without MULTI");

  // Commands that cannot be queued abort the transaction.
  EXPECT_EQ(c->Call({"MULTI"}).str, "OK");
  EXPECT_EQ(c->Call({"SET", "a", "never"}).str, "QUEUED");
  EXPECT_EQ(c->Call({"NOSUCH"}).type, '-');
  EXPECT_EQ(c->Call({"GET"}).type, '-');
  EXPECT_EQ(c->Call({"EXEC"}).str, "EXECABORT Transaction discarded because of previous errors.");
  EXPECT_EQ(c->Call({"GET", "a"}).str, "abc");

  EXPECT_EQ(c->Call({"MULTI"}).str, "OK");
  EXPECT_EQ(c->Call({"SET", "a", "never"}).str, "QUEUED");
  EXPECT_EQ(c->Call({"DISCARD"}).str, "OK");
  EXPECT_EQ(c->Call({"GET", "a"}).str, "abc");
}

TEST_F(RespServerTest, WatchAbortsExecWhenAKeyChanged) {
  StartServer();
  auto a = Connect();
  auto b = Connect();
  a->Call({"SET", "k", "1"});
  EXPECT_EQ(a->Call({"WATCH", "k", "absent"}).str, "OK");
  EXPECT_EQ(b->Call({"SET", "k", "2"}).str, "OK");
  a->Call({"MULTI"});
  a->Call({"SET", "k", "from-a"});
  Reply aborted = a->Call({"EXEC"});
  EXPECT_EQ(aborted.type, '*');
  EXPECT_TRUE(aborted.is_null);
  EXPECT_EQ(a->Call({"GET", "k"}).str, "2");

  // Watches are gone after EXEC; an unchanged watched key lets EXEC run.
  EXPECT_EQ(a->Call({"WATCH", "k"}).str, "OK");
  a->Call({"MULTI"});
  a->Call({"SET", "k", "from-a"});
  Reply ran = a->Call({"EXEC"});
  ASSERT_EQ(ran.elems.size(), 1u);
  EXPECT_EQ(a->Call({"GET", "k"}).str, "from-a");

  // UNWATCH forgets.
  a->Call({"WATCH", "k"});
  b->Call({"SET", "k", "3"});
  EXPECT_EQ(a->Call({"UNWATCH"}).str, "OK");
  a->Call({"MULTI"});
  EXPECT_EQ(a->Call({"WATCH", "x"}).str, "ERR WATCH inside MULTI is not allowed");
  a->Call({"SET", "k", "4"});
  EXPECT_EQ(a->Call({"EXEC"}).elems.size(), 1u);
}

TEST_F(RespServerTest, Hello3SwitchesToResp3) {
  StartServer();
  auto c = Connect();
  Reply hello = c->Call({"HELLO", "3"});
  ASSERT_EQ(hello.type, '%');
  ASSERT_EQ(hello.elems.size(), 14u);
  EXPECT_EQ(hello.elems[0].str, "server");
  EXPECT_EQ(hello.elems[4].str, "proto");
  EXPECT_EQ(hello.elems[5].integer, 3);
  EXPECT_EQ(c->Call({"GET", "missing"}).type, '_');
  Reply info = c->Call({"INFO", "server"});
  EXPECT_EQ(info.type, '=');
  EXPECT_NE(info.str.find("redis_version:"), std::string::npos);
  EXPECT_EQ(c->Call({"HELLO", "4"}).str, "NOPROTO unsupported protocol version");
  EXPECT_EQ(c->Call({"HELLO", "x"}).str, "ERR Protocol version is not an integer or out of range");
  EXPECT_EQ(c->Call({"HELLO", "2"}).type, '*');
  EXPECT_EQ(c->Call({"GET", "missing"}).type, '$');
}

TEST_F(RespServerTest, MalformedStreamClosesOnlyThatConnection) {
  StartServer();
  auto good = Connect();
  auto bad = Connect();
  EXPECT_EQ(good->Call({"SET", "k", "v"}).str, "OK");
  bad->SendRaw("*1\r\n$abc\r\n");
  EXPECT_EQ(bad->Read().str, "ERR Protocol error: invalid bulk length");
  EXPECT_TRUE(bad->Closed());
  auto garbage = Connect();
  garbage->SendRaw(std::string("*2\r\n\x01\x02\x03\xff\xfe", 9));
  EXPECT_EQ(garbage->Read().str.rfind("ERR Protocol error: expected '$'", 0), 0u);
  EXPECT_TRUE(garbage->Closed());
  EXPECT_EQ(good->Call({"GET", "k"}).str, "v");
  EXPECT_GE(server_->stats().protocol_errors.load(), 2u);
}

TEST_F(RespServerTest, OversizeBulkLengthRejected) {
  ServerOptions options;
  options.max_value_bytes = 1024;
  options.max_key_bytes = 16;
  StartServer(options);
  auto c = Connect();
  EXPECT_EQ(c->Call({"SET", std::string(17, 'k'), "v"}).str.rfind("ERR key too large", 0), 0u);
  EXPECT_EQ(c->Call({"SET", "k", std::string(1024, 'v')}).str, "OK");
  c->SendRaw("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n");
  EXPECT_EQ(c->Read().str, "ERR Protocol error: invalid bulk length");
  EXPECT_TRUE(c->Closed());
  auto other = Connect();
  EXPECT_EQ(other->Call({"STRLEN", "k"}).integer, 1024);
}

TEST_F(RespServerTest, SlowRequestIsCutOff) {
  ServerOptions options;
  options.request_timeout = std::chrono::milliseconds(200);
  StartServer(options);
  auto slow = Connect();
  auto idle = Connect();
  slow->SendRaw("*2\r\n$3\r\nGET\r\n$1");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  slow->SendRaw("0");  // trickling bytes does not extend the deadline
  EXPECT_TRUE(slow->Closed());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(idle->Call({"PING"}).str, "PONG");  // an idle connection is not a slow request
  EXPECT_GE(server_->stats().timed_out_clients.load(), 1u);
}

TEST_F(RespServerTest, ClientThatDoesNotReadRepliesIsCutOff) {
  ServerOptions options;
  options.request_timeout = std::chrono::milliseconds(300);
  StartServer(options);
  auto c = Connect();
  EXPECT_EQ(c->Call({"SET", "big", std::string(1 << 20, 'x')}).str, "OK");
  std::string pipeline;
  for (int i = 0; i < 200; ++i) pipeline += Encode({"GET", "big"});
  c->SendRaw(pipeline);  // ~200 MiB of replies that are never read
  // The replies are rendered first (seconds under ASan on a loaded machine); then the write
  // stalls and the deadline cuts the client off.
  for (int i = 0; i < 400 && server_->stats().timed_out_clients.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(server_->stats().timed_out_clients.load(), 1u);
  auto other = Connect();
  EXPECT_EQ(other->Call({"PING"}).str, "PONG");
}

TEST_F(RespServerTest, ConnectionLimit) {
  ServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  auto a = Connect();
  auto b = Connect();
  EXPECT_EQ(a->Call({"PING"}).str, "PONG");
  EXPECT_EQ(b->Call({"PING"}).str, "PONG");
  auto c = Connect();
  EXPECT_EQ(c->Read().str, "ERR max number of clients reached");
  EXPECT_TRUE(c->Closed());
  b.reset();
  // Once a slot is free (the server notices the close), new clients get in.
  for (int i = 0; i < 100; ++i) {
    auto d = Connect();
    d->Send({"PING"});
    Reply r = d->Read();
    if (r.str == "PONG") return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "slot never freed";
}

TEST_F(RespServerTest, Authentication) {
  ServerOptions options;
  options.password = "secret";
  StartServer(options);
  auto c = Connect();
  EXPECT_EQ(c->Call({"GET", "k"}).str, "NOAUTH Authentication required.");
  EXPECT_EQ(c->Call({"AUTH", "wrong"}).str,
            "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(c->Call({"AUTH", "secret"}).str, "OK");
  EXPECT_EQ(c->Call({"SET", "k", "v"}).str, "OK");

  auto h = Connect();
  EXPECT_EQ(h->Call({"HELLO", "3"}).str.rfind("NOAUTH HELLO must be called", 0), 0u);
  Reply hello = h->Call({"HELLO", "3", "AUTH", "default", "secret", "SETNAME", "me"});
  EXPECT_EQ(hello.type, '%');
  EXPECT_EQ(h->Call({"CLIENT", "GETNAME"}).str, "me");

  // Before authentication, big requests are refused outright.
  auto big = Connect();
  big->SendRaw("*100\r\n");
  EXPECT_EQ(big->Read().str, "ERR Protocol error: unauthenticated multibulk length");
}

TEST_F(RespServerTest, AuthWithoutPasswordConfigured) {
  StartServer();
  auto c = Connect();
  EXPECT_EQ(c->Call({"AUTH", "x"}).str.rfind("ERR AUTH <password> called without any password", 0),
            0u);
}

TEST_F(RespServerTest, ScanWithCursorsMatchAndType) {
  StartServer();
  auto c = Connect();
  for (int i = 0; i < 30; ++i) c->Call({"SET", "user:" + std::to_string(i), "v"});
  c->Call({"SET", "other", "v"});
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    Reply r = c->Call({"SCAN", cursor, "MATCH", "user:*", "COUNT", "7"});
    ASSERT_EQ(r.elems.size(), 2u);
    cursor = r.elems[0].str;
    for (const Reply& k : r.elems[1].elems) seen.insert(k.str);
    ASSERT_LT(++calls, 20);
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), 30u);
  EXPECT_EQ(c->Call({"SCAN", "0", "TYPE", "hash"}).elems[1].elems.size(), 0u);
  EXPECT_EQ(c->Call({"SCAN", "12345"}).str, "ERR invalid cursor");
  EXPECT_EQ(c->Call({"SCAN", "abc"}).str, "ERR invalid cursor");
  EXPECT_EQ(c->Call({"SCAN", "0", "COUNT", "0"}).str, "ERR syntax error");
  EXPECT_EQ(c->Call({"KEYS", "user:1*"}).elems.size(), 11u);
  EXPECT_EQ(c->Call({"KEYS", "*"}).elems.size(), 31u);
}

TEST_F(RespServerTest, ClientCommandInfoAndConfig) {
  StartServer();
  auto c = Connect();
  auto other = Connect();
  EXPECT_TRUE(c->Call({"CLIENT", "GETNAME"}).is_null);
  EXPECT_EQ(c->Call({"CLIENT", "SETNAME", "bad name"}).str,
            "ERR Client names cannot contain spaces, newlines or special characters.");
  EXPECT_EQ(c->Call({"CLIENT", "SETNAME", "tester"}).str, "OK");
  EXPECT_EQ(c->Call({"CLIENT", "GETNAME"}).str, "tester");
  const int64_t id = c->Call({"CLIENT", "ID"}).integer;
  EXPECT_GT(id, 0);
  EXPECT_NE(c->Call({"CLIENT", "INFO"}).str.find("name=tester"), std::string::npos);
  other->Call({"PING"});
  const std::string list = c->Call({"CLIENT", "LIST"}).str;
  EXPECT_NE(list.find("id=" + std::to_string(id) + " "), std::string::npos);
  EXPECT_EQ(std::count(list.begin(), list.end(), '\n'), 2);
  EXPECT_EQ(c->Call({"CLIENT", "NOPE"}).str, "ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
  EXPECT_EQ(c->Call({"CLIENT", "SETNAME"}).str,
            "ERR wrong number of arguments for 'client|setname' command");

  const int64_t count = c->Call({"COMMAND", "COUNT"}).integer;
  EXPECT_GT(count, 40);
  EXPECT_EQ(c->Call({"COMMAND"}).elems.size(), static_cast<size_t>(count));
  Reply info = c->Call({"COMMAND", "INFO", "get", "nosuch"});
  ASSERT_EQ(info.elems.size(), 2u);
  EXPECT_EQ(info.elems[0].elems[0].str, "get");
  EXPECT_EQ(info.elems[0].elems[1].integer, 2);
  EXPECT_TRUE(info.elems[1].is_null);
  Reply docs = c->Call({"COMMAND", "DOCS", "set"});
  ASSERT_EQ(docs.elems.size(), 2u);
  EXPECT_EQ(docs.elems[0].str, "set");

  c->Call({"SET", "k", "v"});
  const std::string text = c->Call({"INFO"}).str;
  for (const char* field : {"# Server", "redis_version:", "# Clients", "connected_clients:2",
                            "# Replication", "role:master", "# Stats",
                            "total_commands_processed:", "# Keyspace", "db0:keys=1,expires=0"}) {
    EXPECT_NE(text.find(field), std::string::npos) << field;
  }
  EXPECT_EQ(c->Call({"INFO", "clients"}).str.find("# Server"), std::string::npos);
  EXPECT_NE(c->Call({"INFO", "commandstats"}).str.find("cmdstat_set:calls=1"), std::string::npos);
  Reply config = c->Call({"CONFIG", "GET", "maxclients"});
  ASSERT_EQ(config.elems.size(), 2u);
  EXPECT_EQ(config.elems[1].str, "10000");
  EXPECT_EQ(c->Call({"CONFIG", "GET", "nosuch*"}).elems.size(), 0u);
}

TEST_F(RespServerTest, ReplicationInfoComesFromTheCallback) {
  ServerOptions options;
  options.replication_info = [] { return std::string("role:follower\r\nraft_term:7\r\n"); };
  StartServer(options);
  auto c = Connect();
  const std::string text = c->Call({"INFO", "replication"}).str;
  EXPECT_NE(text.find("role:follower"), std::string::npos);
  EXPECT_NE(text.find("raft_term:7"), std::string::npos);
}

TEST_F(RespServerTest, ReadOnlySelectsStaleReads) {
  StartServer();
  auto c = Connect();
  c->Call({"GET", "k"});
  EXPECT_EQ(backend_->last_mode_.load(), kv::ReadMode::kLinearizable);
  EXPECT_EQ(c->Call({"READONLY"}).str, "OK");
  c->Call({"GET", "k"});
  EXPECT_EQ(backend_->last_mode_.load(), kv::ReadMode::kLocalStale);
  EXPECT_EQ(c->Call({"READWRITE"}).str, "OK");
  c->Call({"GET", "k"});
  EXPECT_EQ(backend_->last_mode_.load(), kv::ReadMode::kLinearizable);
}

TEST_F(RespServerTest, BackendFailuresBecomeErrorReplies) {
  StartServer();
  auto c = Connect();
  backend_->fail_with_ = Status::Unavailable("no leader for region 1");
  EXPECT_EQ(c->Call({"SET", "k", "v"}).str, "TRYAGAIN no leader for region 1");
  backend_->fail_with_ = Status::TimedOut("proposal");
  EXPECT_EQ(c->Call({"SET", "k", "v"}).str.rfind("ERR timed out", 0), 0u);
  // The disk alarm (store/disk_alarm.h): etcd's NOSPACE, as the error code.
  backend_->fail_with_ = Status::ResourceExhausted("database or storage space exhausted");
  EXPECT_EQ(c->Call({"SET", "k", "v"}).str, "NOSPACE database or storage space exhausted");
  backend_->fail_with_ = Status::OK();
  EXPECT_EQ(c->Call({"SET", "k", "v"}).str, "OK");
}

TEST_F(RespServerTest, QuitClosesAfterReplying) {
  StartServer();
  auto c = Connect();
  c->SendRaw(Encode({"QUIT"}) + Encode({"PING"}));
  EXPECT_EQ(c->Read().str, "OK");
  EXPECT_TRUE(c->Closed());
}

TEST_F(RespServerTest, StopClosesClientsAndReturns) {
  StartServer();
  auto c = Connect();
  EXPECT_EQ(c->Call({"PING"}).str, "PONG");
  server_->Stop();
  EXPECT_TRUE(c->Closed());
  server_->Stop();  // idempotent
}

}  // namespace
}  // namespace micedb::resp
