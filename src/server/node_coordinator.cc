// The node's side of the coordinator (docs/coordinator.md): the identity a joining node gets,
// the coordinator service on coordinator-role nodes, the client every node calls it with, the
// store and region heartbeats, and the cluster's JSON for HTTP.
#include <sys/statvfs.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "common/logging.h"
#include "coordinator/store_meta_region.h"
#include "micedb/transport.grpc.pb.h"
#include "server/node.h"
#include "server/node_coordinator.h"
#include "server/split_key.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/load_split.h"

namespace micedb::server {

namespace {

using coordinator::CoordRequest;
using coordinator::CoordResponse;

// The coordinators this node knows, kept in its data directory ('J' in the raft family) so
// that a joined node finds them again after a restart.
constexpr std::string_view kCoordinatorsKey = "J";
constexpr int64_t kTickMs = 50;
constexpr int64_t kStoreHeartbeatMs = 1000;
constexpr int64_t kRegionCheckMs = 200;
constexpr int64_t kJoinTimeoutMs = 60'000;

int64_t MonoMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::Get()->NowMonotonic())
      .count();
}

}  // namespace

Status Node::ResolveIdentity(uint64_t* cluster_id) {
  auto log = GetLogger("server");
  store::StoreIdent existing;
  auto cur = engine_->Get(storage::Cf::kRaft, store::kStoreIdentKey);
  const bool have = cur.ok() && existing.ParseFromString(*cur);
  if (auto saved = engine_->Get(storage::Cf::kRaft, kCoordinatorsKey); saved.ok()) {
    coordinator::JoinResponse j;
    if (j.ParseFromString(*saved)) {
      initial_coordinators_.assign(j.coordinators().begin(), j.coordinators().end());
    }
  }
  if (!options_.id.valid() && have) options_.id = NodeId(existing.node_id());
  if (!options_.id.valid() && options_.join.empty()) {
    return Status::InvalidArgument("a node needs --node-id, or --join to get one");
  }
  *cluster_id = have ? existing.cluster_id() : 0;
  if (!options_.initial_peers.empty()) {
    if (*cluster_id == 0) *cluster_id = store::ClusterIdFromPeers(options_.initial_peers);
    if (initial_coordinators_.empty()) {
      for (const auto& [id, addr] : options_.initial_peers) {
        store::NodeAddress a;
        a.set_node_id(id.value());
        a.set_peer_addr(addr);
        initial_coordinators_.push_back(std::move(a));
      }
    }
  }
  if (options_.join.empty()) return Status::OK();
  auto joined = JoinCluster(options_.id.valid() ? options_.id.value() : 0, *cluster_id);
  if (!joined.ok()) {
    // A node that has its id already may start without the coordinator (it knows the
    // coordinators from before); a new one may not, and a refusal always stops it.
    if (joined.status().code() == StatusCode::kInvalidArgument || !options_.id.valid() ||
        initial_coordinators_.empty()) {
      return joined.status();
    }
    log->warn(
        "cannot reach the cluster to join ({}); starting with the coordinators known "
        "from before",
        joined.status().message());
    return Status::OK();
  }
  if (options_.id.valid() && options_.id.value() != joined->store_id()) {
    return Status::Internal("the coordinator gave this node another id");
  }
  options_.id = NodeId(joined->store_id());
  *cluster_id = joined->cluster_id();
  initial_coordinators_.assign(joined->coordinators().begin(), joined->coordinators().end());
  SaveCoordinators(initial_coordinators_);
  log->info("joined cluster {:016x} as node {}", *cluster_id, options_.id.value());
  return Status::OK();
}

Result<coordinator::JoinResponse> Node::JoinCluster(uint64_t id, uint64_t cluster_id) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!options_.certs_dir.empty()) {
    const security::TlsFiles files = security::NodeFiles(options_.certs_dir);
    grpc::SslCredentialsOptions o;
    MICEDB_ASSIGN_OR_RETURN(o.pem_root_certs, security::ReadPem(files.ca));
    MICEDB_ASSIGN_OR_RETURN(o.pem_cert_chain, security::ReadPem(files.cert));
    MICEDB_ASSIGN_OR_RETURN(o.pem_private_key, security::ReadPem(files.key));
    creds = grpc::SslCredentials(o);
  }
  transport::ForwardRequest req;
  coordinator::JoinRequest* j = req.mutable_coord()->mutable_join();
  j->set_cluster_id(cluster_id);
  coordinator::StoreMeta* s = j->mutable_store();
  s->set_id(id);
  s->set_peer_addr(options_.listen_peer);
  s->set_redis_addr(fmt::format("{}:{}", options_.redis_host, options_.redis_port));
  s->set_http_addr(options_.listen_http);
  s->set_version(options_.version);
  s->mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
  std::string last = "no address to join";
  const int64_t deadline = MonoMs() + kJoinTimeoutMs;
  for (int round = 0; MonoMs() < deadline; ++round) {
    for (const std::string& addr : options_.join) {
      auto stub = transport::NodeService::NewStub(grpc::CreateChannel(addr, creds));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(6));
      transport::ForwardResponse resp;
      grpc::Status st = stub->Forward(&ctx, req, &resp);
      if (!st.ok()) {
        last = fmt::format("{}: {}", addr, st.error_message());
        continue;
      }
      const CoordResponse& c = resp.coord();
      if (c.has_join()) return c.join();
      last = fmt::format("{}: {}", addr, c.error().message());
      if (c.has_error() && !c.error().retry() && !c.error().not_leader()) {
        return Status::InvalidArgument(
            fmt::format("the cluster refused this node: {}", c.error().message()));
      }
    }
    if (round == 0) GetLogger("server")->info("waiting for the cluster to join ({})", last);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Status::Unavailable(fmt::format("could not join the cluster: {}", last));
}

void Node::SaveCoordinators(const std::vector<store::NodeAddress>& members) {
  coordinator::JoinResponse j;
  for (const auto& m : members) *j.add_coordinators() = m;
  Status st = engine_->Put(storage::Cf::kRaft, kCoordinatorsKey, j.SerializeAsString(),
                           storage::WriteOptions{.sync = true});
  if (!st.ok()) GetLogger("server")->warn("cannot save the coordinators: {}", st.ToString());
}

void Node::StartCoordinator() {
  coord_executor_ = std::make_unique<router::ThreadExecutor>();
  coord_sender_ = std::make_unique<CoordSender>(this);
  coord_client_ = std::make_unique<coordinator::CoordinatorClient>(
      coordinator::CoordinatorClientOptions{}, coord_sender_.get(), coord_executor_.get());
  for (const auto& m : initial_coordinators_) {
    if (NodeId(m.node_id()) != options_.id && !m.peer_addr().empty()) {
      transport_->SetAddress(NodeId(m.node_id()), m.peer_addr());
    }
  }
  coord_client_->SetMembers(initial_coordinators_);
  // Every node can serve as the coordinator: it does while its store leads the meta region
  // (a node added to that region later, replacing a lost voter, takes its share at once).
  meta_region_ = std::make_unique<coordinator::StoreMetaRegion>(store_.get(), options_.listen_peer);
  coordinator::CoordinatorOptions co;
  co.cluster_id = identities_->self().cluster_id();
  co.store_down_ms = options_.store_down_ms;
  co.operator_timeout_ms = options_.operator_timeout_ms;
  co.gc_life_time_ms = options_.gc_life_time_ms;
  co.gc_interval_ms = options_.gc_run_interval_ms;
  co.store_limit = options_.schedule_store_limit;
  co.balance_leader_limit = options_.schedule_leader_limit;
  co.hot_region_bytes = std::max<uint64_t>(options_.hot_region_bytes, 1);
  if (options_.hot_region_bytes == 0) co.balance_hot_limit = 0;
  // Regions keep three replicas, or as many as the cluster started with when that is more
  // (recorded by the first leader's bootstrap, so every later leader keeps the same number).
  co.max_replicas = std::max<uint32_t>(3, static_cast<uint32_t>(options_.initial_peers.size()));
  // Disconnected: silent for a sixth of the down time, at most 10 s, and at least two and a
  // half store heartbeat intervals (a store between two heartbeats is not disconnected).
  co.store_disconnected_ms = std::min<int64_t>(
      10'000, std::max<int64_t>(kStoreHeartbeatMs * 5 / 2, options_.store_down_ms / 6));
  coordinator_ = std::make_unique<coordinator::Coordinator>(co, meta_region_.get());
  directory_ = std::make_unique<Directory>(coord_client_.get());
  backend_->SetDirectory(directory_.get());
  coord_executor_->After(kTickMs, [this] { CoordinatorTick(); });
}

void Node::StopCoordinator() {
  coord_stopping_ = true;
  if (coordinator_) coordinator_->Stop();
  if (coord_executor_) coord_executor_->Stop();
}

void Node::CoordinatorTick() {
  if (coord_stopping_) return;
  if (coordinator_) coordinator_->Tick();
  Heartbeat();
  MaybeSweepIntents();
  coord_executor_->After(kTickMs, [this] { CoordinatorTick(); });
}

void Node::Heartbeat() {
  const int64_t now = MonoMs();
  if (now - last_store_heartbeat_ms_ >= kStoreHeartbeatMs) {
    last_store_heartbeat_ms_ = now;
    const auto regions = store_->Regions();
    CoordRequest req;
    coordinator::StoreHeartbeatRequest* hb = req.mutable_store_heartbeat();
    coordinator::StoreMeta* s = hb->mutable_store();
    s->set_id(options_.id.value());
    s->set_peer_addr(options_.listen_peer);
    s->set_redis_addr(fmt::format("{}:{}", options_.redis_host, redis_port()));
    s->set_http_addr(options_.listen_http);
    s->set_version(options_.version);
    s->mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
    bool meta_here = false;
    coordinator::StoreStats* st = hb->mutable_stats();
    st->set_store_id(options_.id.value());
    for (const auto& r : regions) {
      // An empty replica (created by a message, waiting for its snapshot) holds nothing yet.
      if (r.descriptor.conf_state().voters_size() == 0) continue;
      if (store::IsMetaRegion(r.descriptor.id())) {
        meta_here = true;
        continue;
      }
      st->set_region_count(st->region_count() + 1);
      if (r.raft.role == raft::Role::kLeader) st->set_leader_count(st->leader_count() + 1);
    }
    s->set_coordinator(meta_here);
    st->set_coordinator(meta_here);
    struct statvfs vfs;
    if (::statvfs(options_.data_dir.c_str(), &vfs) == 0) {
      st->set_capacity(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
      st->set_available(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
    }
    st->set_no_space(store_->disk_alarm() != store::DiskAlarm::kNone);
    // Bytes the store's data takes: every column family, memtables and table files.
    uint64_t used = 0;
    for (storage::Cf cf : storage::kAllCfs) {
      if (auto size = engine_->ApproximateSize(cf, "", std::string(8, '\xff')); size.ok()) {
        used += *size;
      }
    }
    st->set_used(used);
    store::FlowCounts total;
    for (const auto& [region, counts] : store_->Flow()) {
      if (!store::IsMetaRegion(region)) total += counts;
    }
    // Since the last heartbeat the coordinator got (the baseline moves only on delivery).
    const store::FlowCounts delta = total.Since(store_flow_sent_.first);
    st->set_bytes_written(delta.bytes_written);
    st->set_keys_written(delta.keys_written);
    st->set_bytes_read(delta.bytes_read);
    st->set_keys_read(delta.keys_read);
    st->set_interval_ms(static_cast<uint32_t>(
        store_flow_sent_.second == 0 ? kStoreHeartbeatMs : now - store_flow_sent_.second));
    if (txn_client_) st->set_txn_oldest_start_ts(txn_client_->OldestRunning());
    coord_client_->Call(std::move(req), 2000, [this, total, now](Result<CoordResponse> r) {
      if (coord_stopping_ || !r.ok() || !r->has_store_heartbeat()) return;
      coord_executor_->After(0, [this, total, now] { store_flow_sent_ = {total, now}; });
      const auto& hb = r->store_heartbeat();
      coord_executor_->After(0, [this, sp = hb.gc_safe_point()] { OnGcSafePoint(sp); });
      if (hb.report_regions_size() > 0) {
        std::vector<uint64_t> again(hb.report_regions().begin(), hb.report_regions().end());
        coord_executor_->After(0, [this, again = std::move(again)] {
          for (uint64_t id : again) reported_.erase(id);
        });
      }
      for (const auto& a : hb.stores()) {
        if (NodeId(a.node_id()) != options_.id && !a.peer_addr().empty()) {
          transport_->SetAddress(NodeId(a.node_id()), a.peer_addr());
        }
      }
      std::vector<store::NodeAddress> members(hb.coordinators().begin(), hb.coordinators().end());
      auto known = coord_client_->members();
      auto same = [](const std::vector<store::NodeAddress>& a,
                     const std::vector<store::NodeAddress>& b) {
        if (a.size() != b.size()) return false;
        for (size_t i = 0; i < a.size(); ++i) {
          if (a[i].node_id() != b[i].node_id() || a[i].peer_addr() != b[i].peer_addr()) {
            return false;
          }
        }
        return true;
      };
      if (!members.empty() && !same(members, known)) {
        coord_client_->SetMembers(members);
        SaveCoordinators(members);
      }
    });
  }
  // Region heartbeats: each region led here, at once when its descriptor or leadership
  // changed, and every options_.region_heartbeat_ms otherwise.
  if (now - last_region_check_ms_ < kRegionCheckMs) return;
  last_region_check_ms_ = now;
  const auto shared = store_->RegionsShared();
  const std::vector<store::RegionInfo>& regions = *shared;
  const auto flow = store_->Flow();
  std::map<uint64_t, std::pair<std::string, int64_t>> still;
  std::map<uint64_t, std::map<uint64_t, int64_t>> silent;
  for (const auto& r : regions) {
    if (store::IsMetaRegion(r.descriptor.id()) || r.raft.role != raft::Role::kLeader) continue;
    const uint64_t id = r.descriptor.id();
    // Peers the leader has not heard from since its last quorum check (an election timeout):
    // a change in that set is reported at once, like a change of the descriptor.
    std::map<uint64_t, int64_t>& since = silent[id];
    for (const auto& [peer, progress] : r.raft.progress) {
      if (peer == options_.id || progress.recent_active) continue;
      auto old = silent_since_.find(id);
      int64_t from = now;
      if (old != silent_since_.end()) {
        if (auto p = old->second.find(peer.value()); p != old->second.end()) from = p->second;
      }
      since[peer.value()] = from;
    }
    // recent_active is cleared at every quorum check and set again at the peer's next answer,
    // so a single sample can catch a live peer cleared: it counts as down once silent in
    // every sample for kPeerDownMs.
    constexpr int64_t kPeerDownMs = 2000;
    // What a report tells, for noticing a change: the descriptor changes only with its epoch
    // (splits bump the version, membership changes conf_ver).
    std::string key =
        fmt::format("{}/{}", r.descriptor.epoch().version(), r.descriptor.epoch().conf_ver());
    for (const auto& [peer, from] : since) {
      if (now - from >= kPeerDownMs) key += fmt::format(";down {}", peer);
    }
    auto it = reported_.find(id);
    if (it != reported_.end() && it->second.first == key &&
        now - it->second.second < options_.region_heartbeat_ms) {
      still.emplace(*it);
      continue;
    }
    still[id] = {key, now};
    coordinator::RegionMeta meta;
    *meta.mutable_region() = r.descriptor;
    meta.set_leader(options_.id.value());
    CoordRequest req;
    coordinator::RegionHeartbeat* hb = req.mutable_region_heartbeat();
    *hb->mutable_region() = std::move(meta);
    hb->set_term(r.raft.term.value());
    const std::string begin = r.descriptor.start_key();
    const std::string end = store::EngineRangeEnd(r.descriptor.end_key());
    if (auto sized = RegionDataSize(r.descriptor)) {
      hb->set_approximate_size(sized->first);
      hb->set_approximate_keys(sized->second);
    }
    const auto sent = region_flow_sent_.find(id);
    hb->set_interval_ms(static_cast<uint32_t>(sent == region_flow_sent_.end()
                                                  ? options_.region_heartbeat_ms
                                                  : now - sent->second.second));
    store::FlowCounts counts;
    if (auto f = flow.find(id); f != flow.end()) {
      counts = f->second;
      // Since the last heartbeat of this region the coordinator got.
      const store::FlowCounts delta =
          counts.Since(sent == region_flow_sent_.end() ? store::FlowCounts{} : sent->second.first);
      hb->set_bytes_written(delta.bytes_written);
      hb->set_keys_written(delta.keys_written);
      hb->set_bytes_read(delta.bytes_read);
      hb->set_keys_read(delta.keys_read);
    }
    for (const auto& [peer, from] : since) {
      if (now - from < kPeerDownMs) continue;
      coordinator::PeerStatsEntry* d = hb->add_down_peers();
      d->set_store_id(peer);
      d->set_down_ms(static_cast<uint64_t>(now - from));
    }
    for (uint64_t p : coordinator::PendingPeers(r, options_.id)) hb->add_pending_peers(p);
    coord_client_->Call(std::move(req), 2000, [this, id, counts, now](Result<CoordResponse> r) {
      if (r.ok() && r->has_region_heartbeat()) {
        const bool again = r->region_heartbeat().report_again();
        coord_executor_->After(0, [this, id, counts, now, again] {
          region_flow_sent_[id] = {counts, now};
          // An operator is under way: report at the next check, not in 10 s.
          if (again) reported_.erase(id);
        });
        for (const auto& op : r->region_heartbeat().operators()) RunOperator(op);
        return;
      }
      // Not delivered: report again at the next check.
      coord_executor_->After(0, [this, id] { reported_.erase(id); });
    });
  }
  reported_ = std::move(still);
  silent_since_ = std::move(silent);
  CheckSplits(regions, flow, now);
  CheckMerges(regions, flow, now);
}

void Node::CheckSplits(const std::vector<store::RegionInfo>& regions,
                       const std::map<uint64_t, store::FlowCounts>& flow, int64_t now_ms) {
  const uint64_t split_size = options_.region_split_size;
  const uint64_t split_keys = options_.region_split_keys;
  std::map<uint64_t, SplitCheck> checks;
  for (const auto& r : regions) {
    const uint64_t id = r.descriptor.id();
    if (store::IsMetaRegion(id) || r.raft.role != raft::Role::kLeader) continue;
    store::FlowCounts written;
    if (auto f = flow.find(id); f != flow.end()) written = f->second;
    auto old = split_checks_.find(id);
    SplitCheck& check = checks[id];
    if (old != split_checks_.end()) check = old->second;
    if (!check.running && CheckLoadSplit(r, written, now_ms)) {
      check.running = true;
      continue;
    }
    if (old != split_checks_.end()) {
      const bool due = written.bytes_written - check.bytes >= split_size / 16 ||
                       written.keys_written - check.keys >= split_keys / 16;
      if (!due || check.running) continue;
    }
    check.bytes = written.bytes_written;
    check.keys = written.keys_written;
    const std::string begin = r.descriptor.start_key();
    const std::string end = store::EngineRangeEnd(r.descriptor.end_key());
    const auto [size, keys] = RegionDataSize(r.descriptor).value_or(std::make_pair(0, 0));
    if (size < split_size && keys < split_keys) continue;
    std::string key = FindSplitKey(r.descriptor, size, keys, size >= split_size);
    if (key.empty()) continue;
    GetLogger("server")->info("region {} holds about {} bytes and {} keys: splitting it at {}", id,
                              size, keys, store::PrintableKey(key));
    check.running = true;
    SplitRegion(r.descriptor, std::move(key), [this, id](const Status& st, uint64_t new_id) {
      if (!st.ok()) {
        GetLogger("server")->info("region {}: split not done: {}", id, st.ToString());
      } else {
        GetLogger("server")->info("region {} split: region {} takes its upper half", id, new_id);
      }
      coord_executor_->After(0, [this, id] {
        if (auto it = split_checks_.find(id); it != split_checks_.end()) it->second.running = false;
      });
    });
  }
  split_checks_ = std::move(checks);
  // Regions no longer led here are not watched (nor sampled) any more.
  for (auto it = load_checks_.begin(); it != load_checks_.end();) {
    if (split_checks_.count(it->first) != 0) {
      ++it;
      continue;
    }
    if (it->second.sampling_since_ms != 0) store_->TakeLoadSamples(it->first);
    it = load_checks_.erase(it);
  }
}

bool Node::CheckLoadSplit(const store::RegionInfo& r, const store::FlowCounts& counts,
                          int64_t now_ms) {
  if (options_.region_split_qps == 0) return false;
  const uint64_t id = r.descriptor.id();
  auto [it, fresh] = load_checks_.try_emplace(id);
  LoadCheck& c = it->second;
  if (fresh) {
    c.base = counts;
    c.since_ms = now_ms;
    return false;
  }
  const int64_t elapsed = now_ms - c.since_ms;
  if (elapsed < 1000) return false;
  // One second (or a little more) of traffic.
  const store::FlowCounts d = counts.Since(c.base);
  c.base = counts;
  c.since_ms = now_ms;
  const uint64_t keys = (d.keys_read + d.keys_written) * 1000 / static_cast<uint64_t>(elapsed);
  const uint64_t bytes = (d.bytes_read + d.bytes_written) * 1000 / static_cast<uint64_t>(elapsed);
  if (c.sampling_since_ms != 0) {
    // A second of samples: split where they divide in two.
    std::vector<std::string> samples = store_->TakeLoadSamples(id);
    c.sampling_since_ms = 0;
    c.hot_secs = 0;
    const size_t n = samples.size();
    auto key = store::LoadSplitKey(std::move(samples), r.descriptor.start_key(),
                                   store::EngineRangeEnd(r.descriptor.end_key()));
    if (!key) {
      GetLogger("server")->info(
          "region {} is hot ({} keys/s, {} bytes/s) but its {} sampled requests do not divide "
          "in two (one hot key?): not split",
          id, keys, bytes, n);
      return false;
    }
    GetLogger("server")->info(
        "region {} is hot ({} keys/s, {} bytes/s for {} s): splitting it at {}, which halves "
        "its {} sampled requests",
        id, keys, bytes, options_.region_split_load_secs, store::PrintableKey(*key), n);
    load_splits_++;
    SplitRegion(r.descriptor, std::move(*key), [this, id](const Status& st, uint64_t new_id) {
      if (!st.ok()) {
        GetLogger("server")->info("region {}: load split not done: {}", id, st.ToString());
      } else {
        GetLogger("server")->info("region {} split by load: region {} takes its upper half", id,
                                  new_id);
      }
      coord_executor_->After(0, [this, id] {
        if (auto it = split_checks_.find(id); it != split_checks_.end()) it->second.running = false;
      });
    });
    return true;
  }
  const bool hot =
      keys >= options_.region_split_qps ||
      (options_.region_split_bytes_per_sec > 0 && bytes >= options_.region_split_bytes_per_sec);
  c.hot_secs = hot ? c.hot_secs + 1 : 0;
  if (c.hot_secs >= options_.region_split_load_secs) {
    store_->StartLoadSampling(id);
    c.sampling_since_ms = now_ms;
  }
  return false;
}

std::optional<std::pair<uint64_t, uint64_t>> Node::RegionDataSize(
    const store::RegionDescriptor& desc) const {
  // Raw keys and values are in `default`; transactional data in `write` (a record per
  // version, short values inlined) and `default` (long values).
  const std::string begin = desc.start_key();
  const std::string end = store::EngineRangeEnd(desc.end_key());
  uint64_t size = 0, keys = 0;
  for (storage::Cf cf : {storage::Cf::kDefault, storage::Cf::kWrite}) {
    auto s = engine_->ApproximateSize(cf, begin, end);
    auto k = engine_->ApproximateKeys(cf, begin, end);
    if (!s.ok() || !k.ok()) return std::nullopt;
    size += *s;
    keys += *k;
  }
  return std::make_pair(size, keys);
}

std::string Node::FindSplitKey(const store::RegionDescriptor& desc, uint64_t size, uint64_t keys,
                               bool by_size) const {
  return server::FindSplitKey(engine_.get(), desc, size, keys, by_size,
                              {options_.region_split_size, options_.region_split_keys});
}

void Node::SplitRegion(const store::RegionDescriptor& desc, std::string engine_key,
                       std::function<void(const Status&, uint64_t)> done) {
  CoordRequest alloc;
  alloc.mutable_alloc_id()->set_count(1);
  coord_client_->Call(
      std::move(alloc), 2000,
      [this, desc, key = std::move(engine_key), done = std::move(done)](Result<CoordResponse> r) {
        if (!r.ok() || !r->has_alloc_id() || r->alloc_id().count() < 1) {
          return done(
              r.ok() ? Status::Unavailable("the coordinator gave no region id") : r.status(), 0);
        }
        const uint64_t id = r->alloc_id().first();
        region::RegionRequest split;
        split.set_format(region::FORMAT_V1);
        split.mutable_header()->set_region_id(desc.id());
        *split.mutable_header()->mutable_epoch() = desc.epoch();
        split.mutable_admin()->mutable_split()->set_split_key(key);
        split.mutable_admin()->mutable_split()->set_new_region_id(id);
        store_->RunAdmin(std::move(split), [done, id](const region::RegionResponse& resp) {
          done(resp.has_error() ? store::ToStatus(resp.error()) : Status::OK(), id);
        });
      });
}

void Node::RunOperator(const coordinator::Operator& op) {
  // Guarded by the operator's epoch (coordinator::OperatorRequest); either way the region's
  // next report tells the coordinator whether the step is done.
  coordinator::RunOperatorStep(store_.get(), op);
}

void Node::OnCoordForward(NodeId from, uint64_t id, const CoordRequest& req) {
  auto reply = [this, from, id](CoordResponse r) {
    transport::ForwardResponse resp;
    *resp.mutable_coord() = std::move(r);
    transport_->ReplyForward(from, id, std::move(resp));
  };
  if (!coordinator_) {
    CoordResponse r;
    r.mutable_error()->set_message(fmt::format("node {} is starting", options_.id.value()));
    r.mutable_error()->set_retry(true);
    return reply(std::move(r));
  }
  coordinator_->Handle(req, std::move(reply));
}

void Node::ClusterJson(const std::string& what, std::function<void(std::string)> done) {
  if (!coord_client_) return done(R"({"error":"starting"})");
  CoordRequest req;
  req.mutable_cluster();
  coord_client_->Call(
      std::move(req), 3000, [what, done = std::move(done)](Result<CoordResponse> r) {
        if (!r.ok() || !r->has_cluster()) {
          const std::string why = !r.ok() ? std::string(r.status().message())
                                          : (r->has_error() ? r->error().message() : "no answer");
          coordinator::CoordError e;
          e.set_message(why);
          std::string json;
          (void)google::protobuf::util::MessageToJsonString(e, &json);
          return done(fmt::format(R"({{"error":{}}})", json));
        }
        google::protobuf::util::JsonPrintOptions o;
        o.add_whitespace = true;
        o.always_print_primitive_fields = true;
        std::string out;
        const coordinator::ClusterResponse& c = r->cluster();
        if (what == "stores") {
          coordinator::ClusterResponse only;
          *only.mutable_stores() = c.stores();
          (void)google::protobuf::util::MessageToJsonString(only, &out, o);
        } else if (what == "regions") {
          coordinator::ClusterResponse only;
          *only.mutable_regions() = c.regions();
          (void)google::protobuf::util::MessageToJsonString(only, &out, o);
        } else if (what == "operators") {
          coordinator::ClusterResponse only;
          *only.mutable_operators() = c.operators();
          *only.mutable_finished_operators() = c.finished_operators();
          (void)google::protobuf::util::MessageToJsonString(only, &out, o);
        } else {
          (void)google::protobuf::util::MessageToJsonString(c, &out, o);
        }
        done(std::move(out));
      });
}

void Node::TsoJson(std::function<void(int, std::string)> done) {
  if (!coord_client_) return done(503, R"({"error":"starting"})");
  coord_client_->GetTimestamp([done = std::move(done)](Result<uint64_t> ts) {
    if (!ts.ok()) {
      coordinator::CoordError e;
      e.set_message(std::string(ts.status().message()));
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(e, &json);
      return done(503, fmt::format(R"({{"error":{}}})", json));
    }
    done(200, fmt::format(R"({{"ts":{},"physical_ms":{},"logical":{}}})", *ts,
                          *ts >> coordinator::Coordinator::kLogicalBits,
                          *ts & ((uint64_t{1} << coordinator::Coordinator::kLogicalBits) - 1)));
  });
}

namespace {

// The TSO benchmark's callers (Node::TsoBenchJson): each asks again as soon as it is answered,
// until the deadline.
struct TsoBench {
  coordinator::CoordinatorClient* client;
  int64_t end_ns = 0;
  // Latency histogram: 10 us buckets up to 100 ms, the last bucket for everything above.
  static constexpr int kBuckets = 10'001;
  std::vector<std::atomic<uint64_t>> buckets = std::vector<std::atomic<uint64_t>>(kBuckets);
  std::atomic<uint64_t> got{0}, errors{0}, out_of_order{0};
  std::atomic<int> running{0};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> last;  // per caller

  static int64_t Now() { return SystemClock::Get()->NowMonotonic().count(); }

  void Ask(const std::shared_ptr<TsoBench>& self, size_t caller) {
    const int64_t t0 = Now();
    client->GetTimestamp([self, caller, t0](Result<uint64_t> r) {
      const int64_t t1 = Now();
      const int64_t us = (t1 - t0) / 1000;
      self->buckets[std::min<int64_t>(us / 10, kBuckets - 1)].fetch_add(1,
                                                                        std::memory_order_relaxed);
      if (r.ok()) {
        self->got.fetch_add(1, std::memory_order_relaxed);
        // Each caller's timestamps must rise (only this caller writes its slot).
        if (*r <= self->last[caller]) self->out_of_order.fetch_add(1, std::memory_order_relaxed);
        self->last[caller] = *r;
      } else {
        self->errors.fetch_add(1, std::memory_order_relaxed);
      }
      if (t1 < self->end_ns) return self->Ask(self, caller);
      if (self->running.fetch_sub(1) == 1) {
        std::lock_guard lock(self->mu);
        self->cv.notify_all();
      }
    });
  }

  // The latency (us) below which `q` of the calls finished.
  int64_t Quantile(double q) const {
    uint64_t total = 0;
    for (const auto& b : buckets) total += b.load();
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets[i].load();
      if (static_cast<double>(seen) >= q * static_cast<double>(total)) return int64_t{i + 1} * 10;
    }
    return int64_t{kBuckets} * 10;
  }
};

int QueryInt(const std::string& query, const std::string& name, int fallback) {
  const std::string key = name + "=";
  size_t pos = query.find(key);
  if (pos == std::string::npos || (pos > 0 && query[pos - 1] != '&')) return fallback;
  return std::atoi(query.c_str() + pos + key.size());
}

}  // namespace

std::pair<int, std::string> Node::TsoBenchJson(const std::string& query) {
  if (!coord_client_) return {503, R"({"error":"starting"})"};
  const int callers = QueryInt(query, "callers", 64);
  const int seconds = QueryInt(query, "seconds", 5);
  if (callers < 1 || callers > 4096 || seconds < 1 || seconds > 60) {
    return {400, R"({"error":"callers must be 1..4096 and seconds 1..60"})"};
  }
  auto bench = std::make_shared<TsoBench>();
  bench->client = coord_client_.get();
  bench->last.assign(static_cast<size_t>(callers), 0);
  bench->running = callers;
  const uint64_t requests_before = coord_client_->counters().tso_requests.load();
  const int64_t start = TsoBench::Now();
  bench->end_ns = start + int64_t{seconds} * 1'000'000'000;
  for (int i = 0; i < callers; ++i) bench->Ask(bench, static_cast<size_t>(i));
  {
    std::unique_lock lock(bench->mu);
    bench->cv.wait(lock, [&] { return bench->running.load() == 0; });
  }
  const double elapsed = static_cast<double>(TsoBench::Now() - start) / 1e9;
  const uint64_t requests = coord_client_->counters().tso_requests.load() - requests_before;
  const uint64_t got = bench->got.load();
  return {200,
          fmt::format(R"({{"callers":{},"seconds":{:.3f},"timestamps":{},"per_sec":{:.0f},)"
                      R"("requests":{},"avg_batch":{:.1f},"p50_us":{},"p99_us":{},"p999_us":{},)"
                      R"("errors":{},"out_of_order":{},"coordinator_leader":{}}})",
                      callers, elapsed, got, static_cast<double>(got) / elapsed, requests,
                      requests ? static_cast<double>(got) / static_cast<double>(requests) : 0.0,
                      bench->Quantile(0.5), bench->Quantile(0.99), bench->Quantile(0.999),
                      bench->errors.load(), bench->out_of_order.load(),
                      coord_client_->leader().value())};
}

}  // namespace micedb::server
