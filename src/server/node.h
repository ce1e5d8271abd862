// Node: one micedb process. It owns the storage engine, the store (region peers + raft loop),
// the peer transport and gRPC services, the router, the Redis-protocol server and the HTTP server,
// and starts and stops them in order.
//
// Thread-safety: Start and Stop from one thread; the rest runs on the components' threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/result.h"
#include "coordinator/client.h"
#include "coordinator/coordinator.h"
#include "coordinator/meta_state_machine.h"
#include "coordinator/store_meta_region.h"
#include "frontend/resp/resp_server.h"
#include "kv/active_expiry.h"
#include "kv/grpc/service.h"
#include "kv/region_state_machine.h"
#include "router/router.h"
#include "router/store_link.h"
#include "router/thread_executor.h"
#include "security/tls.h"
#include "server/http_server.h"
#include "server/node_service.h"
#include "storage/engine.h"
#include "store/identity.h"
#include "store/store.h"
#include "transport/peer_transport.h"
#include "txn/client.h"
#include "txn/grpc/service.h"
#include "txn/region_steps.h"
#include "txn/router_transport.h"

namespace micedb::server {

struct NodeOptions {
  NodeId id;
  std::string data_dir;
  std::string listen_peer;  // host:port of the peer port (raft streams, gRPC services)
  std::string listen_http;  // host:port of HTTP
  std::string redis_host = "127.0.0.1";
  uint16_t redis_port = 6379;
  // Initial members (id, peer address); empty for a node that joins an existing cluster.
  // The initial members are the coordinator's voters (docs/coordinator.md).
  std::vector<std::pair<NodeId, std::string>> initial_peers;
  // Nodes of a running cluster (host:port of their peer ports) to join: the coordinator hands
  // out this node's id (when `id` is not set) and the cluster id, and checks that a data
  // directory of another cluster is not brought in.
  std::vector<std::string> join;
  // The coordinator role: this node hosts a replica of the meta region when it is one of the
  // initial members (the first cluster bootstraps it).
  bool coordinator_role = true;
  std::map<std::string, std::string> labels;  // --labels, reported to the coordinator
  // The coordinator counts a store silent this long down (--store-down-time); disconnected
  // after a sixth of it, at most 10 s.
  int64_t store_down_ms = 60'000;
  // The schedulers (docs/sharding.md §3, coordinator::CoordinatorOptions).
  int64_t operator_timeout_ms = 600'000;
  // GC of transactional versions (--gc-life-time, --gc-run-interval; 0: never).
  int64_t gc_life_time_ms = 600'000;
  int64_t gc_run_interval_ms = 600'000;
  uint32_t schedule_store_limit = 4;
  uint32_t schedule_leader_limit = 4;  // leader balancing (0: off)
  // Expired Redis cross-region intents in the regions led here are looked for this often
  // and resolved (--intent-sweep-interval; 0: never).
  int64_t intent_sweep_interval_ms = 60'000;
  // A region whose leader reports this many bytes a second read and written is hot, and the
  // hot ones are spread over the stores (0: no hot-region balancing).
  uint64_t hot_region_bytes = uint64_t{1} << 20;
  // Each region led here reports to the coordinator at least this often (sooner when its
  // epoch, leader or down peers change, or an operator is under way).
  int64_t region_heartbeat_ms = 10'000;
  // The split checker (docs/sharding.md §1): a region led here that holds more than this many
  // bytes (RocksDB's estimate) or keys is split near its middle, checked when a sixteenth of
  // that has been written to it since its last check (and once when first led here).
  uint64_t region_split_size = uint64_t{96} << 20;
  uint64_t region_split_keys = 960'000;
  // Load split (docs/sharding.md §1): a region led here that serves more than this many keys a
  // second (read and written; 0: no load split) or this many bytes a second, for this many
  // seconds in a row, has its requests sampled for a second and is split at the sampled key
  // that halves its load (store/load_split.h).
  uint64_t region_split_qps = 3000;
  uint64_t region_split_bytes_per_sec = uint64_t{30} << 20;
  int region_split_load_secs = 10;
  // The merge checker (docs/sharding.md §2): a region led here smaller than region_merge_size
  // and region_merge_keys (RocksDB's estimates), with no request for region_merge_idle_ms, is
  // merged into a neighbour with the same members when both together stay below half the
  // split size and keys. Frozen regions led here are driven to their end either way.
  bool region_merge = true;
  uint64_t region_merge_size = uint64_t{20} << 20;
  uint64_t region_merge_keys = 200'000;
  int64_t region_merge_idle_ms = 60'000;
  // A frozen region led here whose members have not all taken the freeze after this long (a
  // store down) has its merge refused at the target and rolled back (docs/sharding.md §2).
  int64_t region_merge_timeout_ms = 20'000;
  std::string version;               // what the coordinator shows for this node
  micedb::resp::ServerOptions resp;  // limits of the Redis-protocol server
  store::StoreOptions store;         // node_id and snap_dir are filled in by the node
  router::RouterOptions router;
  txn::TxnServiceOptions txn_service;  // limits of micedb.txn.v1 (--txn-*)
  bool txn_one_pc = true;              // --txn-1pc: one-region transactions commit in one phase
  bool txn_async_commit = true;        // --txn-async-commit (docs/transactions.md §3b)
  uint64_t block_cache_mb = 64;
  int rocksdb_max_open_files = 1024;  // storage::RocksOptions::max_open_files
  // Called once (on an I/O thread) when a peer refuses this node (its data directory was
  // replaced, or it belongs to another cluster); the process should stop. Empty: only logged.
  std::function<void(const std::string& reason)> on_refused;
  // The certificates directory (security/certs.h; docs/security.md). Set: the peer port is
  // mutual TLS and the Redis TLS port can be served. Empty: plain TCP (--insecure).
  std::string certs_dir;
  // The Redis protocol over TLS (needs certs_dir): on or off, where (port 0: any free port),
  // and whether clients must present a certificate the cluster CA signed.
  bool redis_tls = false;
  std::string redis_tls_host = "127.0.0.1";
  uint16_t redis_tls_port = 0;
  security::ClientAuth redis_tls_auth_clients = security::ClientAuth::kRequire;
  // Most value bytes one reply carries (kv::StateMachineOptions::max_result_bytes).
  uint64_t max_result_bytes = uint64_t{128} << 20;
};

class Node : public transport::InboundHandler {
 public:
  explicit Node(NodeOptions options);
  ~Node() override;

  // Opens the data directory's engine, bootstraps the first region when this is an initial
  // member starting on empty storage, and starts serving. Errors name what failed (for
  // example "cannot listen on 127.0.0.1:20161"); nothing keeps running after an error.
  Status Start();
  // After Start failed: true when the data directory could not be opened, read or written
  // (the process then exits with its own code, docs/operations.md).
  bool failed_on_storage() const { return failed_on_storage_; }
  void Stop();

  // This node's id (set by Start for a node that joins and got it from the coordinator).
  NodeId id() const { return options_.id; }
  uint16_t redis_port() const;
  uint16_t redis_tls_port() const;
  uint16_t http_port() const;

  // transport::InboundHandler
  void OnMessages(std::vector<raft::Message> msgs) override;
  void OnForward(NodeId from, uint64_t id, transport::ForwardRequest request) override;
  void OnSnapshot(raft::Message msg, store::StagedSnapshot staged) override;
  void OnSnapshotSent(uint64_t region, NodeId to, bool ok) override;
  void OnUnreachable(NodeId to) override;
  void OnRefused(NodeId by, const std::string& reason, bool keep_running) override;

 private:
  // node_coordinator.cc: who this node is (its id from the flags, the data directory, or the
  // coordinator when it joins), the coordinator and its client, heartbeats.
  Status ResolveIdentity(uint64_t* cluster_id);
  Result<coordinator::JoinResponse> JoinCluster(uint64_t id, uint64_t cluster_id);
  void StartCoordinator();
  void StopCoordinator();
  void CoordinatorTick();
  void Heartbeat();
  // GC (docs/transactions.md §8), on the coordinator executor: a safe point the coordinator
  // sent is made known to the txn layer, and the regions led here are collected at it, one
  // after the other (node_gc.cc).
  void OnGcSafePoint(uint64_t sp);
  // Every intent_sweep_interval_ms: the expired intents of the regions led here, resolved.
  void MaybeSweepIntents();
  void RunGc(std::shared_ptr<std::vector<std::pair<std::string, std::string>>> ranges, size_t i,
             uint64_t sp);
  void GcFailed(uint64_t sp, const std::string& from, const Status& why);
  // Runs an operator a region heartbeat's reply carried (on this node's store, the leader).
  void RunOperator(const coordinator::Operator& op);
  // The split checker (docs/sharding.md §1): each region led here that is due (a sixteenth of
  // the split size or keys written since its last check, or first led here) and too big is
  // split at a key near its middle (FindSplitKey). Coordinator executor's thread.
  void CheckSplits(const std::vector<store::RegionInfo>& regions,
                   const std::map<uint64_t, store::FlowCounts>& flow, int64_t now_ms);
  // The load half of it, for one region led here (CheckSplits): true when it asked for a split.
  bool CheckLoadSplit(const store::RegionInfo& r, const store::FlowCounts& counts, int64_t now_ms);
  // A region's approximate bytes and keys (raw and transactional data), or nullopt when the
  // engine cannot tell.
  std::optional<std::pair<uint64_t, uint64_t>> RegionDataSize(
      const store::RegionDescriptor& desc) const;
  // server::FindSplitKey (split_key.h) over this node's engine and limits.
  std::string FindSplitKey(const store::RegionDescriptor& desc, uint64_t size, uint64_t keys,
                           bool by_size) const;
  // Splits `desc` (led here) at `engine_key`, with a region id from the coordinator; `done`
  // gets the outcome and the new region's id. Any thread.
  void SplitRegion(const store::RegionDescriptor& desc, std::string engine_key,
                   std::function<void(const Status&, uint64_t)> done);
  // Merges (node_merge.cc, docs/sharding.md §2): drives every region led here that is frozen
  // for a merge (CommitMerge at the target's leader once every member holds the freeze, or
  // RollbackMerge once the target moved on), and, with region_merge, freezes one small idle
  // region into a neighbour. Coordinator executor's thread.
  void CheckMerges(const std::vector<store::RegionInfo>& regions,
                   const std::map<uint64_t, store::FlowCounts>& flow, int64_t now_ms);
  // Freezes `source` (led here) for a merge into `target` (PrepareMerge). Any thread.
  void MergeRegion(const store::RegionDescriptor& source, const store::RegionDescriptor& target,
                   std::function<void(const Status&)> done);
  void SaveCoordinators(const std::vector<store::NodeAddress>& members);
  // /api/v1/{cluster,stores,regions}: the body, to `done` on whatever thread answers.
  void ClusterJson(const std::string& what, std::function<void(std::string)> done);
  // /debug/tso: one timestamp, as a gateway's caller gets it (HTTP code and body, to `done`);
  // /debug/tso-bench: `callers` callers asking in a closed loop for `seconds`
  // (docs/coordinator.md; it holds the HTTP thread for the run).
  void TsoJson(std::function<void(int, std::string)> done);
  std::pair<int, std::string> TsoBenchJson(const std::string& query);
  void OnCoordForward(NodeId from, uint64_t id, const coordinator::CoordRequest& req);

  std::string RenderMetrics() const;
  // The /debug/raft document; with `with_hash`, each region also gets "data_hash", a CRC32C
  // over its keys and values in every data column family (equal on converged replicas).
  std::string RenderRaftJson(bool with_hash) const;
  std::string ReplicationInfo() const;
  void InstallHttpHandlers();

  NodeOptions options_;
  std::unique_ptr<storage::Engine> engine_;
  // What this store's leaders know of reads and one-phase commits (txn/concurrency.h).
  std::unique_ptr<txn::ConcurrencyManager> txn_cm_;
  std::unique_ptr<txn::RegionSteps> txn_steps_;  // the transactional bodies sm_ runs
  std::unique_ptr<kv::RegionStateMachine> sm_;
  std::unique_ptr<store::PeerIdentities> identities_;
  std::atomic<bool> refused_{false};
  std::unique_ptr<transport::PeerTransport> transport_;
  std::unique_ptr<store::Store> store_;
  class PeerLink;
  std::unique_ptr<router::StoreLink> store_link_;
  std::unique_ptr<PeerLink> peer_link_;
  std::unique_ptr<router::ThreadExecutor> router_executor_;
  std::unique_ptr<router::Router> backend_;
  std::unique_ptr<NodeServiceImpl> node_service_;
  std::unique_ptr<kv::KvGrpcService> kv_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<resp::RespServer> resp_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<kv::ActiveExpiry> expiry_;
  // The coordinator (node_coordinator.cc).
  std::unique_ptr<coordinator::MetaStateMachine> meta_sm_;
  std::unique_ptr<coordinator::NodeStateMachine> node_sm_;
  std::unique_ptr<coordinator::StoreMetaRegion> meta_region_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  class CoordSender;
  std::unique_ptr<CoordSender> coord_sender_;
  std::unique_ptr<router::ThreadExecutor> coord_executor_;
  std::unique_ptr<coordinator::CoordinatorClient> coord_client_;
  // Transactions with this node as gateway (docs/transactions.md): the client over the router
  // and the oracle, and the gRPC service micedb.txn.v1.
  std::unique_ptr<txn::RouterTransport> txn_transport_;
  std::unique_ptr<txn::TxnClient> txn_client_;
  std::unique_ptr<txn::TxnGrpcService> txn_service_;
  class Directory;
  std::unique_ptr<Directory> directory_;
  std::vector<store::NodeAddress> initial_coordinators_;  // from the data directory or flags
  std::atomic<bool> coord_stopping_{false};
  std::atomic<uint64_t> load_splits_{0};  // splits asked for by load (metrics)
  // Region heartbeats: what was last reported for each region led here, and when (ms).
  std::map<uint64_t, std::pair<std::string, int64_t>> reported_;
  // When the heartbeats last went (monotonic ms; the coordinator executor's thread only).
  int64_t last_store_heartbeat_ms_ = 0;
  int64_t last_region_check_ms_ = 0;
  // The store's traffic counts as of the last store heartbeat and each region's last one
  // (heartbeats report the difference), and since when each region's peer has been silent.
  // (counts, when: monotonic ms), as of the last heartbeat the coordinator got.
  std::pair<store::FlowCounts, int64_t> store_flow_sent_;
  // GC state (coordinator executor only, but for the counters).
  uint64_t gc_done_ = 0;  // the safe point every region led here was collected at
  bool gc_running_ = false;
  int64_t gc_next_try_ms_ = 0;
  std::atomic<uint64_t> gc_runs_{0};
  std::atomic<uint64_t> gc_failures_{0};
  std::atomic<uint64_t> gc_deleted_{0};
  // The intent sweep (node_gc.cc; coordinator executor only).
  int64_t next_intent_sweep_ms_ = 0;
  std::map<uint64_t, std::pair<store::FlowCounts, int64_t>> region_flow_sent_;
  std::map<uint64_t, std::map<uint64_t, int64_t>> silent_since_;
  // The split checker (CheckSplits), per region led here: the bytes and keys written to it as
  // of its last check, and whether a split it asked for is on its way. Coordinator executor's
  // thread only.
  struct SplitCheck {
    uint64_t bytes = 0;
    uint64_t keys = 0;
    bool running = false;
  };
  std::map<uint64_t, SplitCheck> split_checks_;
  // Load split, per region led here: its traffic counts when the current second began, the
  // seconds in a row it ran hot, and since when its requests are sampled (0: they are not).
  struct LoadCheck {
    store::FlowCounts base;
    int64_t since_ms = 0;
    int hot_secs = 0;
    int64_t sampling_since_ms = 0;
  };
  std::map<uint64_t, LoadCheck> load_checks_;
  // Merges (CheckMerges): per frozen region led here, since when it is seen frozen and when it
  // was last driven; per region led here, its traffic counts and since when they have not moved.
  struct MergeDrive {
    int64_t since_ms = 0;
    int64_t last_ms = 0;
  };
  std::map<uint64_t, MergeDrive> merge_drives_;
  struct MergeCheck {
    store::FlowCounts counts;
    int64_t idle_since_ms = 0;
    // Its size is read from the engine at most every kMergeSizeCheckMs once it is idle (an
    // idle region too big to merge would otherwise be measured every 200 ms).
    int64_t next_size_check_ms = 0;
  };
  std::map<uint64_t, MergeCheck> merge_checks_;
  std::atomic<uint64_t> merges_started_{0};  // by the merge checker (metrics)
  bool started_ = false;
  bool failed_on_storage_ = false;
};

}  // namespace micedb::server
