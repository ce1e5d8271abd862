#include "frontend/resp/client_registry.h"

#include <fmt/format.h>

namespace micedb::resp {

std::shared_ptr<ClientRegistry::Client> ClientRegistry::Register(ClientInfo info,
                                                                 std::function<void()> kill) {
  auto client = std::make_shared<Client>();
  std::lock_guard<std::mutex> lock(mu_);
  if (clients_.size() >= max_clients_) return nullptr;
  info.id = next_id_++;
  client->info = std::move(info);
  client->kill = std::move(kill);
  clients_.emplace(client->info.id, client);
  return client;
}

void ClientRegistry::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_.erase(id);
}

size_t ClientRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.size();
}

std::vector<ClientInfo> ClientRegistry::List() const {
  std::vector<std::shared_ptr<Client>> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, client] : clients_) clients.push_back(client);
  }
  std::vector<ClientInfo> out;
  out.reserve(clients.size());
  for (const auto& client : clients) {
    std::lock_guard<std::mutex> lock(client->mu);
    out.push_back(client->info);
  }
  return out;
}

void ClientRegistry::KillAll() {
  std::vector<std::shared_ptr<Client>> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, client] : clients_) clients.push_back(client);
  }
  for (const auto& client : clients) {
    if (client->kill) client->kill();
  }
}

std::string FormatClientLine(const ClientInfo& info, int64_t now_ms) {
  std::string flags;
  if (info.multi >= 0) flags += 'x';
  if (info.readonly) flags += 'r';
  if (flags.empty()) flags = "N";
  return fmt::format(
      "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 "
      "multi={} watch={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 "
      "omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
      info.id, info.addr, info.laddr, info.name, (now_ms - info.created_ms) / 1000,
      (now_ms - info.last_active_ms) / 1000, flags, info.multi, info.watched, info.query_buffer,
      info.last_command.empty() ? "NULL" : info.last_command, info.resp, info.lib_name,
      info.lib_version);
}

}  // namespace micedb::resp
