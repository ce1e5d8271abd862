#include "kv/apply_batch.h"

#include <cassert>

namespace micedb::kv {

// Merges the overlay (pending writes) with an engine iterator. Overlay entries win over the
// engine for the same key; engine keys inside a range deleted this round are hidden.
class MergedCursor final : public ScanCursor {
 public:
  MergedCursor(const ApplyBatch::CfState& state, std::unique_ptr<storage::Iterator> engine,
               std::string_view lower, std::string_view upper)
      : state_(state),
        engine_(std::move(engine)),
        overlay_it_(state.overlay.lower_bound(lower)),
        overlay_end_(lower < upper ? state.overlay.lower_bound(upper) : overlay_it_) {
    engine_->SeekToFirst();
    Settle();
  }

  bool Valid() const override { return valid_; }
  void Next() override {
    assert(valid_);
    if (from_overlay_) {
      if (engine_->Valid() && engine_->key() == overlay_it_->first) engine_->Next();
      ++overlay_it_;
    } else {
      engine_->Next();
    }
    Settle();
  }
  std::string_view key() const override {
    return from_overlay_ ? std::string_view(overlay_it_->first) : engine_->key();
  }
  std::string_view value() const override {
    return from_overlay_ ? std::string_view(*overlay_it_->second) : engine_->value();
  }
  Status status() const override { return engine_->status(); }

 private:
  bool Hidden(std::string_view key) const {
    for (const auto& [begin, end] : state_.deleted_ranges) {
      if (key >= begin && key < end) return true;
    }
    return false;
  }

  // Moves to the next visible entry from either source.
  void Settle() {
    while (true) {
      while (engine_->Valid() && Hidden(engine_->key())) engine_->Next();
      const bool have_engine = engine_->Valid();
      const bool have_overlay = overlay_it_ != overlay_end_;
      if (!have_engine && !have_overlay) {
        valid_ = false;
        return;
      }
      if (have_overlay && (!have_engine || overlay_it_->first <= engine_->key())) {
        if (!overlay_it_->second.has_value()) {  // deleted this round: skip both
          if (have_engine && engine_->key() == overlay_it_->first) engine_->Next();
          ++overlay_it_;
          continue;
        }
        from_overlay_ = true;
      } else {
        from_overlay_ = false;
      }
      valid_ = true;
      return;
    }
  }

  const ApplyBatch::CfState& state_;
  std::unique_ptr<storage::Iterator> engine_;
  ApplyBatch::Overlay::const_iterator overlay_it_;
  ApplyBatch::Overlay::const_iterator overlay_end_;
  bool valid_ = false;
  bool from_overlay_ = false;
};

ApplyBatch::ApplyBatch(storage::Engine* engine) : engine_(engine), out_(&batch_) {}

ApplyBatch::ApplyBatch(storage::Engine* engine, storage::WriteBatch* out)
    : engine_(engine), out_(out) {}

Result<std::optional<std::string>> ApplyBatch::Get(storage::Cf cf, std::string_view key) {
  const CfState& state = State(cf);
  if (auto it = state.overlay.find(key); it != state.overlay.end()) return it->second;
  for (const auto& [begin, end] : state.deleted_ranges) {
    if (key >= begin && key < end) return std::optional<std::string>();
  }
  Result<std::string> value = engine_->Get(cf, key);
  if (value.ok()) return std::optional<std::string>(std::move(value).value());
  if (value.status().IsNotFound()) return std::optional<std::string>();
  return value.status();
}

std::unique_ptr<ScanCursor> ApplyBatch::Scan(storage::Cf cf, std::string_view lower,
                                             std::string_view upper) {
  storage::ReadOptions options;
  options.lower_bound = std::string(lower);
  options.upper_bound = std::string(upper);
  return std::make_unique<MergedCursor>(State(cf), engine_->NewIterator(cf, options), lower, upper);
}

void ApplyBatch::Put(storage::Cf cf, std::string_view key, std::string_view value) {
  out_->Put(cf, key, value);
  State(cf).overlay.insert_or_assign(std::string(key), std::optional<std::string>(value));
}

void ApplyBatch::PutOwned(storage::Cf cf, std::string_view key, std::string value) {
  State(cf).overlay.insert_or_assign(std::string(key), std::optional<std::string>(value));
  out_->PutOwned(cf, key, std::move(value));
}

void ApplyBatch::Delete(storage::Cf cf, std::string_view key) {
  out_->Delete(cf, key);
  State(cf).overlay.insert_or_assign(std::string(key), std::optional<std::string>());
}

void ApplyBatch::DeleteRange(storage::Cf cf, std::string_view begin, std::string_view end) {
  assert(begin <= end);
  out_->DeleteRange(cf, begin, end);
  CfState& state = State(cf);
  state.overlay.erase(state.overlay.lower_bound(begin), state.overlay.lower_bound(end));
  state.deleted_ranges.emplace_back(std::string(begin), std::string(end));
}

void ApplyBatch::Reset() {
  out_->Clear();
  for (CfState& state : cfs_) {
    state.overlay.clear();
    state.deleted_ranges.clear();
  }
}

}  // namespace micedb::kv
