// Registry: the set of metrics a process exports, rendered in the Prometheus text exposition
// format (version 0.0.4) for the /metrics endpoint.
//
// A metric is named by its name plus an optional set of labels; metrics sharing a name form a
// family with one help text and one type. Asking again for a name and label set already
// registered returns the same instrument, so independent components may both ask for it.
//
//   MICEDB_ASSIGN_OR_RETURN(Counter* proposals,
//       registry->GetCounter("micedb_raft_proposals_total", "Proposals received",
//                            {{"region", "7"}}));
//   proposals->Inc();
//
// Thread-safe. Instruments are owned by the registry and stay valid as long as it lives;
// updating them takes no lock.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "common/thread_annotations.h"

namespace micedb {

// Label name/value pairs. Order does not matter: {a=1,b=2} and {b=2,a=1} name the same metric.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A process-wide registry for code that has no registry passed in. Never destroyed.
  static Registry* Default();

  // The instrument for `name` and `labels`, created on first use; `help` is kept from the
  // first registration of the name. Errors:
  //  - InvalidArgument: name not matching [a-zA-Z_:][a-zA-Z0-9_:]*, a label name not matching
  //    [a-zA-Z_][a-zA-Z0-9_]* or starting with "__", a label name given twice, "le" as a
  //    histogram label, or histogram bounds that are not finite and strictly increasing;
  //  - AlreadyExists: the name is registered with another type, or (histograms) with other
  //    bounds.
  Result<Counter*> GetCounter(std::string_view name, std::string_view help,
                              const MetricLabels& labels = {});
  Result<Gauge*> GetGauge(std::string_view name, std::string_view help,
                          const MetricLabels& labels = {});
  Result<Histogram*> GetHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> bounds, const MetricLabels& labels = {});

  // Every metric in Prometheus text format: families sorted by name, each with # HELP and
  // # TYPE lines, series sorted by labels; histograms as _bucket{le="..."} (cumulative,
  // ending with le="+Inf"), _sum and _count.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family;

  static std::string_view TypeName(Type type);

  // Finds or creates the family, checking the type; InvalidArgument / AlreadyExists as above.
  Result<Family*> FindOrAddFamily(std::string_view name, std::string_view help, Type type)
      REQUIRES(mu_);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_ GUARDED_BY(mu_);
};

}  // namespace micedb
