// Cluster: the machinery behind RunSimulation (internal to tests/sim). It owns the event
// queue, the nodes, the network and the checkers. Its code is split by role:
//   cluster.cc         the event loop, per-event checks, trace hash, liveness
//   cluster_ready.cc   each node's Ready handling: persist, send, apply, advance
//   cluster_faults.cc  the nemesis: crashes, partitions, membership, transfers, compaction
//   cluster_clients.cc client writes and ReadIndex reads, and their outcomes
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/random.h"
#include "tests/sim/apply_checker.h"
#include "tests/sim/election_checker.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/fault_profile.h"
#include "tests/sim/log_checker.h"
#include "tests/sim/network.h"
#include "tests/sim/read_checker.h"
#include "tests/sim/sim_node.h"
#include "tests/sim/simulation.h"

namespace micedb::sim {

class Cluster {
 public:
  explicit Cluster(const SimOptions& options);
  SimResult Run();

 private:
  enum class EventKind : uint8_t {
    kTick,           // a node's clock ticks
    kDeliver,        // a message arrives
    kReady,          // a node takes its Ready and persists it
    kSend,           // ... then sends its messages
    kApply,          // ... then applies and advances
    kPersist,        // a leader persists a Ready whose messages it sent first
    kPersistReport,  // a node is told its log is durable up to msg's (index, log_term)
    kSnapReport,     // the transport tells a leader how a MSG_SNAP went
    kUnreachable,    // the transport tells a node a peer is unreachable
    kNemesis,        // a fault action
    kClient,         // a client operation
  };
  struct Event {
    EventKind kind = EventKind::kTick;
    int node = 0;                                        // index into nodes_ (node id - 1)
    uint64_t incarnation = 0;                            // of `node` when the event was scheduled
    std::shared_ptr<const raft::Message> msg = nullptr;  // kDeliver, kPersistReport
    NodeId peer = NodeId();                              // kSnapReport, kUnreachable
    bool ok = false;                                     // kSnapReport
  };

  // cluster.cc
  void Schedule(int64_t delay, Event ev);
  void Dispatch(const Event& ev);
  void AfterEvent(const Event& ev, size_t violations_before);
  void RecordTrace(const Event& ev);
  void Note(std::string text);  // an annotation on the current event's trace line
  void Violate(std::string check, std::string detail);
  void CompareLogs();
  void BeginLiveness();
  bool LivenessReached();
  bool MarkerLost(const SimNode* leader) const;
  void ReportLivenessFailure();
  SimNode& node(NodeId id) { return *nodes_[id.value() - 1]; }
  SimNode* Leader();  // an up node that believes it leads, in the highest term; or null

  // cluster_ready.cc
  void StartNode(SimNode& n);
  void CrashNode(SimNode& n, std::string_view why);
  bool Input(SimNode& n, std::function<void()> fn);
  void AfterInput(SimNode& n);
  void MaybeScheduleReady(SimNode& n);
  void OnTick(const Event& ev);
  void OnReady(SimNode& n);
  bool Persist(SimNode& n);
  void PersistEntries(SimNode& n, const std::vector<raft::Entry>& entries);
  void CheckCommitted(SimNode& n);
  void CheckLeaderLog(SimNode& n);
  void OnSend(SimNode& n);
  void OnPersist(SimNode& n);
  void SendReadyMessages(SimNode& n);
  void SendMessage(const raft::Message& m, uint64_t sender_incarnation);
  void OnDeliver(const Event& ev);
  void OnApply(SimNode& n);
  void FinishReady(SimNode& n);

  // cluster_faults.cc
  void OnNemesis();
  void Crash();
  void CrashLeader();
  void CrashMidReady();
  void Restart();
  void Partition();
  void ChangeMembership();
  void TransferLeadership();
  void Compact();
  void ForceCampaign();
  SimNode* RandomNode(bool want_up);

  // cluster_clients.cc
  void OnClient();
  void ProposeWrite();
  void BeginRead();
  void ResolveProposals(SimNode& n, const raft::Entry& e);
  void TakeReadStates(SimNode& n, const std::vector<raft::ReadState>& states);
  void ServeReads(SimNode& n);
  void TakeDroppedReads(SimNode& n);
  void FailVolatileRequests(SimNode& n);

  const SimOptions options_;
  Random rng_;
  const FaultProfile profile_;
  EventQueue<Event> queue_;
  Network net_;
  std::vector<std::unique_ptr<SimNode>> nodes_;

  Violations violations_;
  ElectionChecker elections_{&violations_};
  LogChecker logs_{&violations_};
  ApplyChecker applies_{&violations_};
  ReadChecker reads_{&violations_};

  bool faults_on_ = true;
  int64_t faults_ended_at_ = 0;
  struct Marker {
    NodeId proposer;
    Term term;
    LogIndex index;
  };
  std::optional<Marker> marker_;  // the liveness probe entry
  uint64_t next_op_id_ = 1;

  uint64_t events_ = 0;
  uint64_t trace_hash_ = 0;
  uint32_t touched_ = 0;  // bit i: nodes_[i] took input during the current event
  std::string note_;      // annotation of the current event (kept only when tracing)
  bool tracing_ = false;
  std::vector<std::string> trace_;  // ring of the last options_.trace_tail lines
  size_t trace_next_ = 0;
  SimStats stats_;
};

}  // namespace micedb::sim
