#include "server/node.h"

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/logging.h"
#include "common/random.h"
#include "server/node_coordinator.h"
#include "storage/rocks_engine.h"
#include "store/keys.h"

namespace micedb::server {

namespace fs = std::filesystem;

// The peer transport as the router's link to other nodes.
class Node::PeerLink final : public router::PeerLink {
 public:
  PeerLink(transport::PeerTransport* transport, store::Store* store)
      : transport_(transport), store_(store) {}
  void Forward(NodeId to, transport::ForwardRequest request, int64_t timeout_ms,
               ForwardCallback done) override {
    transport_->Forward(to, std::move(request), std::chrono::milliseconds(timeout_ms),
                        std::move(done));
  }
  std::vector<NodeId> Nodes() const override {
    std::vector<NodeId> out;
    for (const auto& [id, addr] : store_->Addresses()) {
      if (id != store_->node_id()) out.push_back(id);
    }
    return out;
  }

 private:
  transport::PeerTransport* transport_;
  store::Store* store_;
};

Node::Node(NodeOptions options) : options_(std::move(options)) {}

Node::~Node() { Stop(); }

Status Node::Start() {
  auto log = GetLogger("server");
  storage::RocksOptions ro;
  ro.block_cache_bytes = options_.block_cache_mb << 20;
  ro.max_open_files = options_.rocksdb_max_open_files;
  auto engine = storage::RocksEngine::Open((fs::path(options_.data_dir) / "db").string(), ro);
  if (!engine.ok()) {
    failed_on_storage_ = true;
    return engine.status();
  }
  engine_ = std::move(*engine);

  std::string snap_dir = (fs::path(options_.data_dir) / "snap").string();
  std::error_code ec;
  fs::remove_all(snap_dir + "/tmp", ec);
  fs::create_directories(snap_dir, ec);
  if (ec) {
    failed_on_storage_ = true;
    return Status::IoError(fmt::format("cannot create {}: {}", snap_dir, ec.message()));
  }

  // Leaders learn a fresh timestamp from the TSO when they take a region over (before
  // admitting one-phase commits there). coord_client_ is set later in Start and goes after
  // the store in Stop; an answer arriving after that finds txn_cm_ still here.
  // Asked from the store's loop: handed to the coordinator executor, as a coordinator in this
  // process would answer inline (and take its own lock on the loop).
  txn_cm_ =
      std::make_unique<txn::ConcurrencyManager>([this](std::function<void(Result<uint64_t>)> done) {
        if (!coord_client_ || !coord_executor_) {
          return done(Status::Unavailable("the node is starting"));
        }
        coord_executor_->After(0, [this, done = std::move(done)]() mutable {
          if (coord_stopping_ || !coord_client_) {
            return done(Status::Unavailable("the node is stopping"));
          }
          coord_client_->GetTimestamp(std::move(done));
        });
      });
  txn_steps_ = std::make_unique<txn::RegionSteps>(
      txn::RegionStepsOptions{.clock = SystemClock::Get()}, txn_cm_.get());
  // Until the coordinator has said how far GC went, reads and prewrites wait (after a
  // restart, versions below the safe point may be gone already).
  txn_steps_->RequireSafePoint();
  sm_ = std::make_unique<kv::RegionStateMachine>(
      kv::StateMachineOptions{.max_value_bytes = options_.resp.max_value_bytes,
                              .max_result_bytes = options_.max_result_bytes},
      txn_steps_.get());
  meta_sm_ = std::make_unique<coordinator::MetaStateMachine>();
  node_sm_ = std::make_unique<coordinator::NodeStateMachine>(sm_.get(), meta_sm_.get());
  // This node's id (flags, data directory, or the coordinator of the cluster it joins) and
  // cluster (node_coordinator.cc).
  uint64_t cluster_id = 0;
  MICEDB_RETURN_IF_ERROR(ResolveIdentity(&cluster_id));
  // Who this data directory belongs to (store/identity.h); peers refuse another incarnation
  // of a node they know.
  auto ident = store::LoadOrCreateIdent(
      engine_.get(), options_.id, cluster_id,
      Random(static_cast<uint64_t>(SystemClock::Get()->NowMonotonic().count()) ^
             (options_.id.value() << 32) ^ static_cast<uint64_t>(::getpid()))
          .Next64());
  if (!ident.ok()) return ident.status();
  identities_ = std::make_unique<store::PeerIdentities>(engine_.get(), *ident);
  MICEDB_RETURN_IF_ERROR(identities_->Load());
  transport::TransportOptions to;
  to.node_id = options_.id;
  to.listen_addr = options_.listen_peer;
  to.snap_dir = snap_dir;
  to.cluster_id = ident->cluster_id();
  to.incarnation = ident->incarnation();
  // Peers with other timing are refused: their vote promises last another time (raft.md §7).
  to.tick_ms = static_cast<uint32_t>(options_.store.tick_ms);
  to.election_ticks = static_cast<uint32_t>(options_.store.election_tick);
  to.check_peer = [this](NodeId from, uint64_t cluster, uint64_t incarnation) {
    return identities_->Check(from, cluster, incarnation);
  };
  if (!options_.certs_dir.empty()) {
    // Mutual TLS on the peer port: raft streams (node certificates) and gRPC (node or
    // client certificates), both signed by the cluster CA.
    const security::TlsFiles files = security::NodeFiles(options_.certs_dir);
    MICEDB_ASSIGN_OR_RETURN(
        to.tls_server, security::MakeServerContext(
                           files, security::ClientAuth::kRequire,
                           {std::string(security::kAlpnRaft), std::string(security::kAlpnGrpc)}));
    MICEDB_ASSIGN_OR_RETURN(to.tls_client, security::MakeClientContext(files, security::kAlpnRaft));
    grpc::SslCredentialsOptions creds;
    MICEDB_ASSIGN_OR_RETURN(creds.pem_root_certs, security::ReadPem(files.ca));
    MICEDB_ASSIGN_OR_RETURN(creds.pem_cert_chain, security::ReadPem(files.cert));
    MICEDB_ASSIGN_OR_RETURN(creds.pem_private_key, security::ReadPem(files.key));
    to.channel_creds = grpc::SslCredentials(creds);
  }
  transport_ = std::make_unique<transport::PeerTransport>(std::move(to), this);
  store::StoreOptions so = options_.store;
  so.node_id = options_.id;
  so.snap_dir = snap_dir;
  so.random_seed = so.random_seed ? so.random_seed : options_.id.value() * 7919 + ::getpid();
  so.free_bytes = [dir = options_.data_dir] { return store::FreeDiskBytes(dir); };
  store_ = std::make_unique<store::Store>(so, engine_.get(), node_sm_.get(), transport_.get());
  if (!options_.initial_peers.empty()) {
    // The initial members bootstrap the first data region and, as coordinators, the meta
    // region (docs/coordinator.md).
    if (Status st = store_->Bootstrap(options_.initial_peers, options_.coordinator_role);
        !st.ok()) {
      failed_on_storage_ = true;
      return st;
    }
  }
  for (const auto& [id, addr] : options_.initial_peers) {
    if (id != options_.id) transport_->SetAddress(id, addr);
  }
  store_link_ = std::make_unique<router::StoreLink>(store_.get());
  peer_link_ = std::make_unique<PeerLink>(transport_.get(), store_.get());
  router_executor_ = std::make_unique<router::ThreadExecutor>();
  router::RouterOptions ro_router = options_.router;
  ro_router.max_result_bytes = options_.max_result_bytes;
  if (ro_router.request_id_base == 0) {
    // Random per process, so that request ids differ across nodes and restarts.
    ro_router.request_id_base =
        Random(static_cast<uint64_t>(SystemClock::Get()->NowMonotonic().count()) ^
               (options_.id.value() << 48) ^ static_cast<uint64_t>(::getpid()))
            .Next64();
  }
  if (ro_router.unsafe_local_reads) {
    log->warn("--testing-unsafe-local-reads: reads skip ReadIndex and may return stale data");
  }
  backend_ = std::make_unique<router::Router>(ro_router, store_link_.get(), peer_link_.get(),
                                              router_executor_.get(), SystemClock::Get());
  node_service_ = std::make_unique<NodeServiceImpl>(
      backend_.get(), store_.get(), [this](bool with_hash) { return RenderRaftJson(with_hash); });
  node_service_->SetCoordinator(
      [this](coordinator::CoordRequest req,
             const std::function<void(coordinator::CoordResponse)>& done) {
        if (!coord_client_) {
          coordinator::CoordResponse r;
          r.mutable_error()->set_message("the node is starting");
          r.mutable_error()->set_retry(true);
          return done(std::move(r));
        }
        coord_client_->Call(std::move(req), [done](Result<coordinator::CoordResponse> r) {
          if (r.ok()) return done(std::move(*r));
          coordinator::CoordResponse e;
          e.mutable_error()->set_message(std::string(r.status().message()));
          e.mutable_error()->set_retry(true);
          done(std::move(e));
        });
      });
  kv_service_ = std::make_unique<kv::KvGrpcService>(
      backend_.get(), kv::KvApiOptions{.max_key_bytes = options_.resp.max_key_bytes,
                                       .max_value_bytes = options_.resp.max_value_bytes});

  txn_transport_ = std::make_unique<txn::RouterTransport>(
      backend_.get(), [this](uint32_t count, std::function<void(Result<uint64_t>)> done) {
        if (!coord_client_) return done(Status::Unavailable("the node is starting"));
        coord_client_->GetTimestamps(count, std::move(done));
      });
  txn_client_ = std::make_unique<txn::TxnClient>(
      txn_transport_.get(), router_executor_.get(), SystemClock::Get(),
      txn::TxnClientOptions{.one_pc = options_.txn_one_pc,
                            .async_commit = options_.txn_async_commit});
  txn::TxnServiceOptions txn_opts = options_.txn_service;
  txn_opts.max_key_bytes = options_.resp.max_key_bytes;
  txn_opts.max_value_bytes = options_.resp.max_value_bytes;
  txn_service_ =
      std::make_unique<txn::TxnGrpcService>(txn_client_.get(), SystemClock::Get(), txn_opts);

  // The gRPC server listens on no port of its own: the transport owns the peer port and
  // hands it every connection that is not a raft stream (docs/transport.md).
  grpc::ServerBuilder builder;
  builder.RegisterService(transport_->service());
  builder.RegisterService(node_service_.get());
  builder.RegisterService(kv_service_.get());
  builder.RegisterService(txn_service_.get());
  builder.SetMaxReceiveMessageSize(256 << 20);
  builder.SetMaxSendMessageSize(256 << 20);
  // Peers ping every 2 s to notice a dead node quickly (transport ChannelArgs); without these
  // the server answers an idle peer's pings with GOAWAY "too_many_pings" and drops the
  // connection with every stream on it (seen in the soak, as lost raft messages).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  grpc_server_ = builder.BuildAndStart();
  if (!grpc_server_) return Status::Internal("cannot start the gRPC server");
  if (Status st = transport_->Listen(options_.listen_peer, grpc_server_.get()); !st.ok()) {
    return Status::IoError(
        fmt::format("cannot listen on {} (peer address): {}", options_.listen_peer, st.message()));
  }

  if (Status st = store_->Start(); !st.ok()) {
    failed_on_storage_ = true;
    return st;
  }
  StartCoordinator();

  resp::ServerOptions resp_options = options_.resp;
  resp_options.host = options_.redis_host;
  resp_options.port = options_.redis_port;
  resp_options.replication_info = [this] { return ReplicationInfo(); };
  if (options_.redis_tls) {
    if (options_.certs_dir.empty()) {
      return Status::InvalidArgument("the Redis TLS port needs certificates (--certs-dir)");
    }
    MICEDB_ASSIGN_OR_RETURN(resp_options.tls,
                            security::MakeServerContext(security::NodeFiles(options_.certs_dir),
                                                        options_.redis_tls_auth_clients, {}));
    resp_options.tls_host = options_.redis_tls_host;
    resp_options.tls_port = options_.redis_tls_port;
  }
  resp_ = std::make_unique<resp::RespServer>(resp_options, backend_.get());
  MICEDB_RETURN_IF_ERROR(resp_->Start());

  http_ = std::make_unique<HttpServer>();
  InstallHttpHandlers();
  auto colon = options_.listen_http.rfind(':');
  std::string http_host = options_.listen_http.substr(0, colon);
  if (http_host.size() > 2 && http_host.front() == '[') {
    http_host = http_host.substr(1, http_host.size() - 2);
  }
  uint16_t http_port = static_cast<uint16_t>(std::stoi(options_.listen_http.substr(colon + 1)));
  MICEDB_RETURN_IF_ERROR(http_->Start(http_host, http_port));
  // Active expiry in the regions this node leads (kv/active_expiry.h).
  expiry_ = std::make_unique<kv::ActiveExpiry>(
      kv::ActiveExpiry::Options{}, backend_.get(), engine_.get(),
      [this] {
        std::vector<kv::ActiveExpiry::LedRegion> led;
        const auto flow = store_->Flow();
        for (const auto& r : store_->Regions()) {
          if (r.raft.role == raft::Role::kLeader && !store::IsMetaRegion(r.descriptor.id())) {
            auto f = flow.find(r.descriptor.id());
            // Keys written to it so far (+1: 0 means unknown, never skipped).
            const uint64_t writes = f == flow.end() ? 1 : f->second.keys_written + 1;
            led.push_back({r.descriptor.id(), kv::UserRangeOf(r.descriptor), writes});
          }
        }
        return led;
      },
      SystemClock::Get());
  expiry_->Start();
  started_ = true;
  log->info("node {} serving: redis {}:{}, http {}, peer {}", options_.id.value(),
            resp_options.host, resp_->port(), options_.listen_http, options_.listen_peer);
  return Status::OK();
}

void Node::Stop() {
  // Transactions in flight stop reaching the router and the oracle (both go below).
  if (txn_transport_) txn_transport_->Stop();
  StopCoordinator();
  if (expiry_) expiry_->Stop();
  // Front ends first (no new requests), then the machinery behind them.
  if (http_) http_->Stop();
  if (resp_) resp_->Stop();
  if (store_) store_->Stop();
  // No new connections for the gRPC server it could not serve after Shutdown.
  if (transport_) transport_->StopListening();
  if (grpc_server_) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  }
  if (transport_) transport_->Shutdown();
  if (router_executor_) router_executor_->Stop();
  if (grpc_server_) grpc_server_->Wait();
  grpc_server_.reset();
  resp_.reset();
  http_.reset();
  store_.reset();
  expiry_.reset();
  txn_service_.reset();
  txn_client_.reset();
  backend_.reset();
  router_executor_.reset();
  directory_.reset();
  coord_client_.reset();
  txn_transport_.reset();  // after the last callback that could still reach it
  coord_executor_.reset();
  coordinator_.reset();
  coord_sender_.reset();
  meta_region_.reset();
  peer_link_.reset();
  store_link_.reset();
  node_service_.reset();
  kv_service_.reset();
  transport_.reset();
  if (engine_) engine_->SyncWAL().IgnoreError();
  engine_.reset();
}

uint16_t Node::redis_port() const { return resp_ ? resp_->port() : 0; }
uint16_t Node::redis_tls_port() const { return resp_ ? resp_->tls_port() : 0; }
uint16_t Node::http_port() const { return http_ ? http_->port() : 0; }

void Node::OnMessages(std::vector<raft::Message> msgs) { store_->Step(std::move(msgs)); }

void Node::OnForward(NodeId from, uint64_t id, transport::ForwardRequest request) {
  if (request.has_coord()) return OnCoordForward(from, id, request.coord());
  if (request.request().body_case() == region::RegionRequest::kAdmin &&
      (request.request().admin().has_commit_merge() ||
       request.request().admin().has_refuse_merge())) {
    // A merge's second step (or its refusal after a timeout), sent by the frozen source's leader
    // (node_merge.cc).
    return store_->RunAdmin(std::move(*request.mutable_request()),
                            [this, from, id](region::RegionResponse resp) {
                              transport::ForwardResponse out;
                              *out.mutable_response() = std::move(resp);
                              transport_->ReplyForward(from, id, std::move(out));
                            });
  }
  backend_->ServeForward(std::move(request), [this, from, id](transport::ForwardResponse resp) {
    transport_->ReplyForward(from, id, std::move(resp));
  });
}

void Node::OnSnapshot(raft::Message msg, store::StagedSnapshot staged) {
  store_->OnSnapshotReceived(std::move(msg), std::move(staged));
}

void Node::OnSnapshotSent(uint64_t region, NodeId to, bool ok) {
  store_->ReportSnapshot(RegionId(region), to, ok);
}

void Node::OnUnreachable(NodeId to) { store_->ReportUnreachable(to); }

void Node::OnRefused(NodeId by, const std::string& reason, bool keep_running) {
  // Other raft timing: the transport logged it; this node stays apart from that peer until
  // one side is restarted with the other's values.
  if (keep_running) return;
  // Another node will not let this one in (a replaced data directory, another cluster):
  // carrying on could only do harm or spin. Stop, saying why.
  if (refused_.exchange(true)) return;
  GetLogger("server")->error("node {} refuses this node: {}", by.value(), reason);
  if (options_.on_refused) options_.on_refused(reason);
}

}  // namespace micedb::server
