#include "security/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "security/certs.h"

namespace micedb::security {
namespace {

// A server context and the ALPN list it accepts, in wire format (length-prefixed names),
// which OpenSSL's selection callback reads for as long as the context lives.
struct AlpnContext : asio::ssl::context {
  explicit AlpnContext(std::string w) : asio::ssl::context(tls_server), wire(std::move(w)) {}
  std::string wire;
};

int AlpnSelect(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
               const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* ours = static_cast<const AlpnContext*>(arg);
  unsigned char* selected = nullptr;
  unsigned char selected_len = 0;
  // Our preference first; a client that offers none of ours fails the handshake.
  if (SSL_select_next_proto(
          &selected, &selected_len, reinterpret_cast<const unsigned char*>(ours->wire.data()),
          static_cast<unsigned int>(ours->wire.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  *outlen = selected_len;
  return SSL_TLSEXT_ERR_OK;
}

std::string Wire(const std::vector<std::string>& names) {
  std::string wire;
  for (const auto& n : names) {
    wire.push_back(static_cast<char>(n.size()));
    wire += n;
  }
  return wire;
}

Status Load(asio::ssl::context& ctx, const TlsFiles& files) {
  asio::error_code ec;
  ctx.load_verify_file(files.ca, ec);
  if (ec)
    return Status::InvalidArgument(
        fmt::format("cannot use CA file {}: {}", files.ca, ec.message()));
  ctx.use_certificate_chain_file(files.cert, ec);
  if (ec) {
    return Status::InvalidArgument(
        fmt::format("cannot use certificate {}: {}", files.cert, ec.message()));
  }
  ctx.use_private_key_file(files.key, asio::ssl::context::pem, ec);
  if (ec)
    return Status::InvalidArgument(fmt::format("cannot use key {}: {}", files.key, ec.message()));
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(fmt::format("{} is not the key of {}", files.key, files.cert));
  }
  return Status::OK();
}

void Harden(asio::ssl::context& ctx) {
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
}

}  // namespace

TlsFiles NodeFiles(const std::string& certs_dir) {
  return TlsFiles{CaCertPath(certs_dir), NodeCertPath(certs_dir), NodeKeyPath(certs_dir)};
}

TlsFiles ClientFiles(const std::string& certs_dir, const std::string& user) {
  return TlsFiles{CaCertPath(certs_dir), ClientCertPath(certs_dir, user),
                  ClientKeyPath(certs_dir, user)};
}

Result<std::shared_ptr<asio::ssl::context>> MakeServerContext(const TlsFiles& files,
                                                              ClientAuth auth,
                                                              std::vector<std::string> alpn) {
  auto ctx = std::make_shared<AlpnContext>(Wire(alpn));
  Harden(*ctx);
  MICEDB_RETURN_IF_ERROR(Load(*ctx, files));
  switch (auth) {
    case ClientAuth::kRequire:
      ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
      break;
    case ClientAuth::kOptional:
      ctx->set_verify_mode(asio::ssl::verify_peer);
      break;
    case ClientAuth::kNone:
      ctx->set_verify_mode(asio::ssl::verify_none);
      break;
  }
  if (!alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx->native_handle(), AlpnSelect, ctx.get());
  return std::shared_ptr<asio::ssl::context>(std::move(ctx));
}

Result<std::shared_ptr<asio::ssl::context>> MakeClientContext(const TlsFiles& files,
                                                              std::string_view alpn) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  Harden(*ctx);
  MICEDB_RETURN_IF_ERROR(Load(*ctx, files));
  ctx->set_verify_mode(asio::ssl::verify_peer);
  if (!alpn.empty()) {
    const std::string wire = Wire({std::string(alpn)});
    SSL_CTX_set_alpn_protos(ctx->native_handle(),
                            reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned int>(wire.size()));
  }
  return ctx;
}

std::string SelectedAlpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return data == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(data), len);
}

std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) <= 0) {
    return "";
  }
  return cn;
}

Result<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot read {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace micedb::security
