#include "common/metrics_registry.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/no_destructor.h"

namespace micedb {

struct Registry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<double> bounds;  // histograms only
  // Keyed by labels sorted by name; exactly one instrument per series, matching `type`.
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::map<MetricLabels, Series> series;
};

namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool ValidMetricName(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c)))) {
      return false;
    }
  }
  return true;
}

bool ValidLabelName(std::string_view s) {
  if (s.empty() || s.starts_with("__")) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c)))) {
      return false;
    }
  }
  return true;
}

// Returns the labels sorted by name, or InvalidArgument.
Result<MetricLabels> NormalizeLabels(std::string_view metric, const MetricLabels& labels,
                                     bool histogram) {
  MetricLabels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::string& n = sorted[i].first;
    if (!ValidLabelName(n)) {
      return Status::InvalidArgument(fmt::format("metric {}: bad label name '{}'", metric, n));
    }
    if (histogram && n == "le") {
      return Status::InvalidArgument(
          fmt::format("metric {}: 'le' is reserved for histogram buckets", metric));
    }
    if (i > 0 && sorted[i - 1].first == n) {
      return Status::InvalidArgument(fmt::format("metric {}: label '{}' given twice", metric, n));
    }
  }
  return sorted;
}

void AppendEscaped(std::string_view s, bool escape_quotes, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && escape_quotes) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// Sample values as Prometheus parses them (Go's ParseFloat): shortest round-trip decimal,
// and +Inf, -Inf, NaN spelled out.
std::string FormatValue(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  return fmt::format("{}", v);
}

// `name{a="1",b="2"}` (or just `name` without labels); `extra` is appended as one more label
// (the histogram's le).
void AppendSeriesName(std::string_view name, const MetricLabels& labels,
                      const std::pair<std::string_view, std::string>* extra, std::string* out) {
  out->append(name);
  if (labels.empty() && extra == nullptr) {
    return;
  }
  out->push_back('{');
  bool first = true;
  const auto add = [&](std::string_view k, std::string_view v) {
    if (!first) {
      out->push_back(',');
    }
    first = false;
    out->append(k);
    out->append("=\"");
    AppendEscaped(v, /*escape_quotes=*/true, out);
    out->push_back('"');
  };
  for (const auto& [k, v] : labels) {
    add(k, v);
  }
  if (extra != nullptr) {
    add(extra->first, extra->second);
  }
  out->push_back('}');
}

void AppendSample(std::string_view name, const MetricLabels& labels, std::string_view value,
                  std::string* out,
                  const std::pair<std::string_view, std::string>* extra = nullptr) {
  AppendSeriesName(name, labels, extra, out);
  out->push_back(' ');
  out->append(value);
  out->push_back('\n');
}

}  // namespace

std::string_view Registry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Registry::Registry() = default;
Registry::~Registry() = default;

Registry* Registry::Default() {
  static NoDestructor<Registry> registry;
  return registry.get();
}

Result<Registry::Family*> Registry::FindOrAddFamily(std::string_view name, std::string_view help,
                                                    Type type) {
  if (!ValidMetricName(name)) {
    return Status::InvalidArgument(fmt::format("bad metric name '{}'", name));
  }
  auto it = families_.find(name);
  if (it != families_.end()) {
    if (it->second->type != type) {
      return Status::AlreadyExists(
          fmt::format("metric {} is already registered as a {}", name, TypeName(it->second->type)));
    }
    return it->second.get();
  }
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  Family* raw = family.get();
  families_.emplace(std::string(name), std::move(family));
  return raw;
}

Result<Counter*> Registry::GetCounter(std::string_view name, std::string_view help,
                                      const MetricLabels& labels) {
  MICEDB_ASSIGN_OR_RETURN(MetricLabels key, NormalizeLabels(name, labels, false));
  std::lock_guard lock(mu_);
  MICEDB_ASSIGN_OR_RETURN(Family * family, FindOrAddFamily(name, help, Type::kCounter));
  auto& series = family->series[std::move(key)];
  if (!series.counter) {
    series.counter = std::make_unique<Counter>();
  }
  return series.counter.get();
}

Result<Gauge*> Registry::GetGauge(std::string_view name, std::string_view help,
                                  const MetricLabels& labels) {
  MICEDB_ASSIGN_OR_RETURN(MetricLabels key, NormalizeLabels(name, labels, false));
  std::lock_guard lock(mu_);
  MICEDB_ASSIGN_OR_RETURN(Family * family, FindOrAddFamily(name, help, Type::kGauge));
  auto& series = family->series[std::move(key)];
  if (!series.gauge) {
    series.gauge = std::make_unique<Gauge>();
  }
  return series.gauge.get();
}

Result<Histogram*> Registry::GetHistogram(std::string_view name, std::string_view help,
                                          std::vector<double> bounds, const MetricLabels& labels) {
  MICEDB_ASSIGN_OR_RETURN(MetricLabels key, NormalizeLabels(name, labels, true));
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      return Status::InvalidArgument(
          fmt::format("histogram {}: bucket bounds must be finite and strictly increasing", name));
    }
  }
  std::lock_guard lock(mu_);
  MICEDB_ASSIGN_OR_RETURN(Family * family, FindOrAddFamily(name, help, Type::kHistogram));
  if (family->series.empty() && family->bounds.empty()) {
    family->bounds = bounds;
  } else if (family->bounds != bounds) {
    return Status::AlreadyExists(
        fmt::format("histogram {} is already registered with other bucket bounds", name));
  }
  auto& series = family->series[std::move(key)];
  if (!series.histogram) {
    series.histogram = std::make_unique<Histogram>(std::move(bounds));
  }
  return series.histogram.get();
}

std::string Registry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, family] : families_) {
    out.append("# HELP ");
    out.append(name);
    out.push_back(' ');
    AppendEscaped(family->help, /*escape_quotes=*/false, &out);
    out.append("\n# TYPE ");
    out.append(name);
    out.push_back(' ');
    out.append(TypeName(family->type));
    out.push_back('\n');
    for (const auto& [labels, series] : family->series) {
      switch (family->type) {
        case Type::kCounter:
          AppendSample(name, labels, std::to_string(series.counter->value()), &out);
          break;
        case Type::kGauge:
          AppendSample(name, labels, FormatValue(series.gauge->value()), &out);
          break;
        case Type::kHistogram: {
          const Histogram::Snapshot snap = series.histogram->Read();
          const std::string bucket = name + "_bucket";
          for (size_t i = 0; i < snap.cumulative.size(); ++i) {
            const std::pair<std::string_view, std::string> le{
                "le", i < snap.bounds.size() ? FormatValue(snap.bounds[i]) : "+Inf"};
            AppendSample(bucket, labels, std::to_string(snap.cumulative[i]), &out, &le);
          }
          AppendSample(name + "_sum", labels, FormatValue(snap.sum), &out);
          AppendSample(name + "_count", labels, std::to_string(snap.count), &out);
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace micedb
