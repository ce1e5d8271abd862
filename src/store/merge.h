// Region merge (docs/sharding.md §2): the decisions that the store, the node driving a merge and
// the simulation share. The protocol itself is in store_merge.cc.
#pragma once

#include <string>

#include "micedb/region.pb.h"
#include "micedb/store.pb.h"
#include "store/store.h"

namespace micedb::store {

// `a` is a later epoch than `b` of the same region (epochs only grow, component by component).
bool EpochNewer(const RegionEpoch& a, const RegionEpoch& b);

// Why `source` cannot merge into `target`; empty when it can: they are neighbours, neither is
// the coordinator's region nor frozen for a merge itself (the source may be: the target's
// CommitMerge checks a frozen source), and they have the same voters and no learners. Depends
// on the two descriptors only, so every replica that checks it agrees.
std::string MergeProblem(const RegionDescriptor& source, const RegionDescriptor& target);

// What the leader of a region frozen for a merge does next.
struct MergeStep {
  enum class Kind {
    kWait,      // a member does not hold the freeze yet, or the target is not known here
    kCommit,    // `request` (CommitMerge) goes to the target's leader
    kRollback,  // `request` (RollbackMerge) goes to the source's leader, this store's
    kTransfer,  // this store holds no replica of the target: the source's leadership goes to
                // `transfer_to`, whose store can tell whether the target moved on
    kRefuse,    // the merge waited too long for a member: `request` (RefuseMerge) goes to the
                // target's leader, which moves the target's epoch past the freeze
  };
  Kind kind = Kind::kWait;
  region::RegionRequest request;
  NodeId transfer_to;
};
// `source` is led here and frozen; `target` is this store's replica of the target, if any. A
// rollback once that replica applied, from its log, an epoch past the freeze (the store checks
// again before proposing it); a commit once every member of the source holds the freeze in its
// log (each target replica then finds the source's entries up to it in its own log); the
// source's leadership to another member when this store cannot tell (no target replica here,
// or one that went past the freeze by a snapshot). When the merge has `waited_too_long` for a
// member that does not hold the freeze, the target is asked to refuse it (RefuseMerge): the
// merge then ends in a rollback without that member.
MergeStep NextMergeStep(const RegionInfo& source, const RegionInfo* target,
                        bool waited_too_long = false);

// An admin request for region `d`, with its epoch in the header (its body still to set).
region::RegionRequest AdminRequestFor(const RegionDescriptor& d);

// The PrepareMerge request that freezes `source` for a merge into `target`.
region::RegionRequest PrepareMergeRequest(const RegionDescriptor& source,
                                          const RegionDescriptor& target);

}  // namespace micedb::store
