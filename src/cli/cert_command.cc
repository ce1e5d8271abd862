#include "cli/cert_command.h"

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "security/tls.h"

namespace micedb::cli {
namespace {

void AddCommon(CLI::App* cmd, CertCommandOptions* o, bool needs_key) {
  cmd->add_option("--certs-dir", o->cert.certs_dir, "Directory of the certificates")
      ->envname("MICEDB_CERTS_DIR")
      ->required();
  if (needs_key) {
    cmd->add_option("--ca-key", o->cert.ca_key,
                    "The CA's private key file (keep it away from the nodes)")
        ->required();
    cmd->add_option("--lifetime-days", o->cert.lifetime_days,
                    "Validity in days (default: CA 3650, others 1825)");
    cmd->add_flag("--overwrite", o->cert.overwrite, "Replace files that exist");
  }
}

int Report(const Status& st, const std::string& done) {
  if (!st.ok()) {
    std::fprintf(stderr, "micedb: error: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::printf("%s\n", done.c_str());
  return 0;
}

int List(const std::string& dir) {
  std::vector<std::string> files = {security::CaCertPath(dir), security::NodeCertPath(dir)};
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("client.") && name.ends_with(".crt")) files.push_back(e.path().string());
  }
  if (ec) {
    std::fprintf(stderr, "micedb: error: cannot list %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  for (const auto& f : files) {
    auto info = security::ReadCertInfo(f);
    if (!info.ok()) continue;
    std::string hosts;
    for (const auto& h : info->hosts) hosts += (hosts.empty() ? "" : ",") + h;
    std::printf("%-40s CN=%-12s %s expires %s%s\n", f.c_str(), info->common_name.c_str(),
                info->is_ca ? "CA" : "  ", info->not_after.c_str(),
                hosts.empty() ? "" : (" hosts=" + hosts).c_str());
  }
  return 0;
}

}  // namespace

CLI::App* AddCertCommand(CLI::App* app, CertCommandOptions* o) {
  CLI::App* cert = app->add_subcommand("cert", "Create the cluster's TLS certificates");
  cert->require_subcommand(1);
  CLI::App* ca = cert->add_subcommand("create-ca", "Create the cluster CA (ca.crt and its key)");
  AddCommon(ca, o, true);
  ca->callback([o] { o->op = "create-ca"; });
  CLI::App* node = cert->add_subcommand(
      "create-node", "Create node.crt/node.key for the hosts (IPs, DNS names) a node serves");
  AddCommon(node, o, true);
  node->add_option("hosts", o->hosts, "Addresses clients and nodes use to reach the node")
      ->required();
  node->callback([o] { o->op = "create-node"; });
  CLI::App* client = cert->add_subcommand(
      "create-client", "Create client.<user>.crt/.key (for micedb node|status|kv, Redis TLS)");
  AddCommon(client, o, true);
  client->add_option("user", o->user, "The user name (e.g. root)")->required();
  client->callback([o] { o->op = "create-client"; });
  CLI::App* list = cert->add_subcommand("list", "List the certificates in a directory");
  AddCommon(list, o, false);
  list->callback([o] { o->op = "list"; });
  return cert;
}

int RunCert(const CertCommandOptions& o) {
  const std::string& dir = o.cert.certs_dir;
  if (o.op == "create-ca") {
    return Report(
        security::CreateCa(o.cert),
        fmt::format("wrote {} and the CA key {}", security::CaCertPath(dir), o.cert.ca_key));
  }
  if (o.op == "create-node") {
    return Report(
        security::CreateNode(o.cert, o.hosts),
        fmt::format("wrote {} and {}", security::NodeCertPath(dir), security::NodeKeyPath(dir)));
  }
  if (o.op == "create-client") {
    return Report(security::CreateClient(o.cert, o.user),
                  fmt::format("wrote {} and {}", security::ClientCertPath(dir, o.user),
                              security::ClientKeyPath(dir, o.user)));
  }
  if (o.op == "list") return List(dir);
  return 2;
}

void AddClientSecurityFlags(CLI::App* cmd, ClientSecurity* s) {
  cmd->add_option("--certs-dir", s->certs_dir,
                  "Certificates directory (ca.crt, client.<user>.crt/.key); empty: a cluster "
                  "running --insecure")
      ->envname("MICEDB_CERTS_DIR");
  cmd->add_option("--user", s->user, "Whose client certificate to present")->capture_default_str();
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const ClientSecurity& s) {
  if (s.certs_dir.empty()) return grpc::InsecureChannelCredentials();
  const security::TlsFiles files = security::ClientFiles(s.certs_dir, s.user);
  grpc::SslCredentialsOptions creds;
  MICEDB_ASSIGN_OR_RETURN(creds.pem_root_certs, security::ReadPem(files.ca));
  MICEDB_ASSIGN_OR_RETURN(creds.pem_cert_chain, security::ReadPem(files.cert));
  MICEDB_ASSIGN_OR_RETURN(creds.pem_private_key, security::ReadPem(files.key));
  return grpc::SslCredentials(creds);
}

}  // namespace micedb::cli
