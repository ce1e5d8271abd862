// The peer port under TLS (docs/security.md): the handshake, the choice of protocol by ALPN,
// and the bridge that hands a TLS connection's gRPC traffic to the gRPC server.
//
// The gRPC server takes connections as plain descriptors (AddInsecureChannelFromFd), so a
// TLS connection's decrypted bytes are copied to it through a socket pair. Only gRPC traffic
// (snapshots, admin, the KV API) takes this path; raft streams read the TLS stream directly.
#include <fcntl.h>

#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>

#include <grpcpp/server_posix.h>

#include "common/logging.h"
#include "security/certs.h"
#include "security/tls.h"
#include "transport/raft_stream.h"

namespace micedb::transport {

using asio::ip::tcp;

namespace {
spdlog::logger* Log() { return GetLogger("transport"); }

// How long a connection may take to finish its handshake and say what it is.
constexpr auto kHandshakeDeadline = std::chrono::seconds(10);

std::string Remote(tcp::socket& s) {
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}
}  // namespace

// Copies bytes both ways between a TLS connection and the gRPC server's end of a socket
// pair, until either side closes. I/O thread only.
class PeerTransport::GrpcBridge : public std::enable_shared_from_this<GrpcBridge> {
 public:
  GrpcBridge(std::shared_ptr<security::NetStream> tls, asio::local::stream_protocol::socket local)
      : tls_(std::move(tls)), local_(std::move(local)) {}

  void Start() {
    FromTls();
    ToTls();
  }

 private:
  static constexpr size_t kBufBytes = 64 << 10;

  void FromTls() {
    tls_->async_read_some(asio::buffer(in_),
                          [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                            if (ec) return self->Close();
                            asio::async_write(self->local_, asio::buffer(self->in_, n),
                                              [self](const asio::error_code& ec, size_t) {
                                                if (ec) return self->Close();
                                                self->FromTls();
                                              });
                          });
  }

  void ToTls() {
    local_.async_read_some(asio::buffer(out_),
                           [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                             if (ec) return self->Close();
                             asio::async_write(*self->tls_, asio::buffer(self->out_, n),
                                               [self](const asio::error_code& ec, size_t) {
                                                 if (ec) return self->Close();
                                                 self->ToTls();
                                               });
                           });
  }

  void Close() {
    tls_->close();
    asio::error_code ignored;
    local_.close(ignored);
  }

  std::shared_ptr<security::NetStream> tls_;
  asio::local::stream_protocol::socket local_;
  char in_[kBufBytes];
  char out_[kBufBytes];
};

void PeerTransport::Secure(tcp::socket socket) {
  auto stream = std::make_shared<security::NetStream>(std::move(socket), *options_.tls_server);
  // A connection that does not finish its handshake and say what it is in time is closed.
  auto deadline = std::make_shared<asio::steady_timer>(io_, kHandshakeDeadline);
  deadline->async_wait([stream](const asio::error_code& ec) {
    if (!ec) stream->close();
  });
  stream->tls_stream()->async_handshake(
      asio::ssl::stream_base::server, [this, stream, deadline](const asio::error_code& ec) {
        if (ec) {
          deadline->cancel();
          // Strangers, scanners and clients without a certificate end here.
          Log()->info("peer port: TLS handshake from {} failed: {}", Remote(stream->socket()),
                      ec.message());
          stream->close();
          return;
        }
        const std::string alpn = security::SelectedAlpn(stream->ssl());
        const std::string name = security::PeerCommonName(stream->ssl());
        if (alpn == security::kAlpnGrpc) {
          // Node and client certificates may use the gRPC services.
          deadline->cancel();
          BridgeToGrpc(stream);
          return;
        }
        if (alpn != security::kAlpnRaft || name != security::kNodeName) {
          deadline->cancel();
          Log()->warn(
              "peer port: {} (certificate '{}') asked for '{}': only nodes may open "
              "raft streams",
              Remote(stream->socket()), name, alpn);
          stream->close();
          return;
        }
        // A raft stream: its magic first, as on a plain port.
        auto head = std::make_shared<std::array<char, kMagic.size()>>();
        asio::async_read(*stream, asio::buffer(*head),
                         [this, stream, deadline, head](const asio::error_code& ec, size_t) {
                           deadline->cancel();
                           if (ec || std::string_view(head->data(), head->size()) != kMagic) {
                             stream->close();
                             return;
                           }
                           StartInbound(std::move(*stream));
                         });
      });
}

void PeerTransport::BridgeToGrpc(std::shared_ptr<security::NetStream> stream) {
  grpc::Server* server = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (listening_) server = grpc_server_;
  }
  if (server == nullptr) {
    stream->close();
    return;
  }
  asio::error_code ignored;
  stream->socket().set_option(tcp::no_delay(true), ignored);
  asio::local::stream_protocol::socket ours(io_), theirs(io_);
  asio::error_code ec;
  asio::local::connect_pair(ours, theirs, ec);
  if (ec) {
    Log()->warn("peer port: no socket pair for a gRPC connection: {}", ec.message());
    stream->close();
    return;
  }
  const int fd = theirs.release(ec);
  if (ec) {
    stream->close();
    return;
  }
  // gRPC's endpoints expect a non-blocking descriptor (a blocking read would stall its
  // poller thread).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
  grpc::AddInsecureChannelFromFd(server, fd);
  std::make_shared<GrpcBridge>(std::move(stream), std::move(ours))->Start();
}

}  // namespace micedb::transport
