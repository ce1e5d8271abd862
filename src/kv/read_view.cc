#include "kv/read_view.h"

namespace micedb::kv {
namespace {

class EngineCursor final : public ScanCursor {
 public:
  explicit EngineCursor(std::unique_ptr<storage::Iterator> it) : it_(std::move(it)) {
    it_->SeekToFirst();
  }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  std::string_view key() const override { return it_->key(); }
  std::string_view value() const override { return it_->value(); }
  Status status() const override { return it_->status(); }

 private:
  std::unique_ptr<storage::Iterator> it_;
};

}  // namespace

Result<std::optional<std::string>> EngineView::Get(storage::Cf cf, std::string_view key) {
  storage::ReadOptions options;
  options.snapshot = snapshot_;
  Result<std::string> value = engine_->Get(cf, key, options);
  if (value.ok()) return std::optional<std::string>(std::move(value).value());
  if (value.status().IsNotFound()) return std::optional<std::string>();
  return value.status();
}

std::unique_ptr<ScanCursor> EngineView::Scan(storage::Cf cf, std::string_view lower,
                                             std::string_view upper) {
  storage::ReadOptions options;
  options.snapshot = snapshot_;
  options.lower_bound = std::string(lower);
  options.upper_bound = std::string(upper);
  return std::make_unique<EngineCursor>(engine_->NewIterator(cf, options));
}

}  // namespace micedb::kv
