#include "security/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

namespace micedb::security {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(BASIC_CONSTRAINTS* p) const { BASIC_CONSTRAINTS_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

constexpr int kCaDays = 3650;
constexpr int kLeafDays = 1825;

// The last OpenSSL error, for messages.
std::string SslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

Status Fail(const std::string& what) {
  return Status::IoError(fmt::format("{}: {}", what, SslError()));
}

// Writes `data` to `path` with `mode`, replacing a file only when allowed.
Status WriteFile(const std::string& path, const std::string& data, mode_t mode, bool overwrite) {
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (!overwrite) flags |= O_EXCL;
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::InvalidArgument(
          fmt::format("{} exists already (use --overwrite to replace it)", path));
    }
    return Status::IoError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  ::fchmod(fd, mode);  // O_CREAT's mode only applies to new files
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return Status::IoError(fmt::format("cannot write {}: {}", path, err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status::IoError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  return Status::OK();
}

Result<std::string> ReadFile(const std::string& path) {
  Owned<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return Status::NotFound(fmt::format("cannot read {}: {}", path, SslError()));
  std::string out;
  char buf[4096];
  int n = 0;
  while ((n = BIO_read(bio.get(), buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string PemKey(EVP_PKEY* key) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string PemCert(X509* cert) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<Owned<EVP_PKEY>> NewKey() {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return Fail("cannot generate a key");
  return key;
}

Status AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Fail(fmt::format("cannot add extension {}", value));
  }
  return Status::OK();
}

// A certificate for `key`'s public half, named `cn`, valid for `days`, with a random serial.
Result<Owned<X509>> NewCert(EVP_PKEY* key, const std::string& cn, int days) {
  Owned<X509> cert(X509_new());
  if (!cert) return Fail("cannot make a certificate");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return Fail("no randomness for a serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  // Valid from an hour ago, for clocks a little behind the one that made it.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("MiceDB"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

struct Ca {
  Owned<X509> cert;
  Owned<EVP_PKEY> key;
};

Result<Ca> LoadCa(const CertOptions& opts) {
  if (opts.ca_key.empty()) return Status::InvalidArgument("--ca-key is required");
  Ca ca;
  {
    Owned<BIO> bio(BIO_new_file(CaCertPath(opts.certs_dir).c_str(), "r"));
    if (bio) ca.cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!ca.cert) {
      return Status::NotFound(
          fmt::format("cannot read the CA certificate {} (run `micedb cert "
                      "create-ca` first): {}",
                      CaCertPath(opts.certs_dir), SslError()));
    }
  }
  {
    Owned<BIO> bio(BIO_new_file(opts.ca_key.c_str(), "r"));
    if (bio) ca.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!ca.key) {
      return Status::NotFound(
          fmt::format("cannot read the CA key {}: {}", opts.ca_key, SslError()));
    }
  }
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1) {
    return Status::InvalidArgument(
        fmt::format("{} is not the key of {}", opts.ca_key, CaCertPath(opts.certs_dir)));
  }
  return ca;
}

Status EnsureDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", dir, ec.message()));
  return Status::OK();
}

// Signs and writes a leaf certificate and its key.
Status IssueLeaf(const CertOptions& opts, const std::string& cn, const std::string& san,
                 const char* usage, const std::string& cert_path, const std::string& key_path) {
  MICEDB_RETURN_IF_ERROR(EnsureDir(opts.certs_dir));
  MICEDB_ASSIGN_OR_RETURN(Ca ca, LoadCa(opts));
  MICEDB_ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  const int days = opts.lifetime_days > 0 ? opts.lifetime_days : kLeafDays;
  MICEDB_ASSIGN_OR_RETURN(Owned<X509> cert, NewCert(key.get(), cn, days));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get()));
  MICEDB_RETURN_IF_ERROR(AddExt(cert.get(), ca.cert.get(), NID_basic_constraints, "CA:FALSE"));
  MICEDB_RETURN_IF_ERROR(AddExt(cert.get(), ca.cert.get(), NID_key_usage,
                                "critical,digitalSignature,keyEncipherment"));
  MICEDB_RETURN_IF_ERROR(AddExt(cert.get(), ca.cert.get(), NID_ext_key_usage, usage));
  MICEDB_RETURN_IF_ERROR(
      AddExt(cert.get(), ca.cert.get(), NID_authority_key_identifier, "keyid:always"));
  if (!san.empty()) {
    MICEDB_RETURN_IF_ERROR(AddExt(cert.get(), ca.cert.get(), NID_subject_alt_name, san.c_str()));
  }
  if (X509_sign(cert.get(), ca.key.get(), EVP_sha256()) == 0) return Fail("cannot sign");
  MICEDB_RETURN_IF_ERROR(WriteFile(key_path, PemKey(key.get()), 0600, opts.overwrite));
  return WriteFile(cert_path, PemCert(cert.get()), 0644, opts.overwrite);
}

bool ValidUser(const std::string& user) {
  if (user.empty() || user.size() > 63) return false;
  for (char c : user) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return user != "." && user != ".." && user != kNodeName;
}

bool ValidHost(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == ':' || c == '*';
    if (!ok) return false;
  }
  return true;
}

bool LooksLikeIp(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string CaCertPath(const std::string& dir) { return (fs::path(dir) / "ca.crt").string(); }
std::string NodeCertPath(const std::string& dir) { return (fs::path(dir) / "node.crt").string(); }
std::string NodeKeyPath(const std::string& dir) { return (fs::path(dir) / "node.key").string(); }
std::string ClientCertPath(const std::string& dir, const std::string& user) {
  return (fs::path(dir) / fmt::format("client.{}.crt", user)).string();
}
std::string ClientKeyPath(const std::string& dir, const std::string& user) {
  return (fs::path(dir) / fmt::format("client.{}.key", user)).string();
}

Status CreateCa(const CertOptions& opts) {
  if (opts.ca_key.empty()) return Status::InvalidArgument("--ca-key is required");
  MICEDB_RETURN_IF_ERROR(EnsureDir(opts.certs_dir));
  MICEDB_ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  const int days = opts.lifetime_days > 0 ? opts.lifetime_days : kCaDays;
  MICEDB_ASSIGN_OR_RETURN(Owned<X509> cert, NewCert(key.get(), "MiceDB CA", days));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  MICEDB_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  MICEDB_RETURN_IF_ERROR(
      AddExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  MICEDB_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return Fail("cannot sign");
  const fs::path key_dir = fs::path(opts.ca_key).parent_path();
  if (!key_dir.empty()) MICEDB_RETURN_IF_ERROR(EnsureDir(key_dir.string()));
  MICEDB_RETURN_IF_ERROR(WriteFile(opts.ca_key, PemKey(key.get()), 0600, opts.overwrite));
  return WriteFile(CaCertPath(opts.certs_dir), PemCert(cert.get()), 0644, opts.overwrite);
}

Status CreateNode(const CertOptions& opts, const std::vector<std::string>& hosts) {
  if (hosts.empty()) {
    return Status::InvalidArgument(
        "name at least one host the node is reached by (an IP address or DNS name)");
  }
  std::string san = fmt::format("DNS:{}", kNodeName);
  for (const auto& h : hosts) {
    if (!ValidHost(h)) return Status::InvalidArgument(fmt::format("bad host name '{}'", h));
    san += LooksLikeIp(h) ? fmt::format(",IP:{}", h) : fmt::format(",DNS:{}", h);
  }
  return IssueLeaf(opts, kNodeName, san, "serverAuth,clientAuth", NodeCertPath(opts.certs_dir),
                   NodeKeyPath(opts.certs_dir));
}

Status CreateClient(const CertOptions& opts, const std::string& user) {
  if (!ValidUser(user)) {
    return Status::InvalidArgument(
        fmt::format("bad user name '{}' (letters, digits, '_', '-', '.'; not \"node\")", user));
  }
  return IssueLeaf(opts, user, "", "clientAuth", ClientCertPath(opts.certs_dir, user),
                   ClientKeyPath(opts.certs_dir, user));
}

Result<CertInfo> ReadCertInfo(const std::string& path) {
  MICEDB_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Status::Corruption(fmt::format("{} is not a PEM certificate", path));
  CertInfo info;
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof(cn)) >
      0) {
    info.common_name = cn;
  }
  Owned<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type == GEN_DNS) {
      const auto* s = n->d.dNSName;
      info.hosts.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (n->type == GEN_IPADD) {
      const auto* s = n->d.iPAddress;
      char text[64] = {0};
      const int len = ASN1_STRING_length(s);
      inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), text, sizeof(text));
      info.hosts.emplace_back(text);
    }
  }
  info.is_ca = X509_check_ca(cert.get()) != 0;
  Owned<BIO> out(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(out.get(), X509_get0_notAfter(cert.get()));
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  info.not_after.assign(data, static_cast<size_t>(n));
  return info;
}

}  // namespace micedb::security
