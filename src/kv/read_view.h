// ReadView: what the state machine reads through. Two implementations: EngineView (an engine,
// optionally at a snapshot; for reads) and ApplyBatch (an engine plus the writes of the apply
// round in progress; for writes).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/status.h"
#include "storage/cf.h"
#include "storage/engine.h"

namespace micedb::kv {

// A forward cursor positioned on the first key of its range when created.
// Thread-compatible; must not outlive the view it came from, and the view must not be
// written while the cursor is in use.
class ScanCursor {
 public:
  virtual ~ScanCursor() = default;
  virtual bool Valid() const = 0;
  // Requires Valid().
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Not OK after a storage error (then Valid() is false).
  virtual Status status() const = 0;
};

class ReadView {
 public:
  virtual ~ReadView() = default;
  // The value of `key`, nullopt when absent; IoError/Corruption from storage.
  virtual Result<std::optional<std::string>> Get(storage::Cf cf, std::string_view key) = 0;
  // Keys lower <= k < upper in order. Never null.
  virtual std::unique_ptr<ScanCursor> Scan(storage::Cf cf, std::string_view lower,
                                           std::string_view upper) = 0;
};

// Reads an engine at its latest state or at `snapshot`. Neither is owned; both must outlive
// the view. Thread-compatible.
class EngineView final : public ReadView {
 public:
  explicit EngineView(storage::Engine* engine, const storage::Snapshot* snapshot = nullptr)
      : engine_(engine), snapshot_(snapshot) {}

  Result<std::optional<std::string>> Get(storage::Cf cf, std::string_view key) override;
  std::unique_ptr<ScanCursor> Scan(storage::Cf cf, std::string_view lower,
                                   std::string_view upper) override;

 private:
  storage::Engine* engine_;
  const storage::Snapshot* snapshot_;
};

}  // namespace micedb::kv
