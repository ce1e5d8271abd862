#include "storage/mem_iterator.h"

#include <cassert>
#include <utility>

namespace micedb::storage {
namespace {

class MemIterator final : public Iterator {
 public:
  MemIterator(std::shared_ptr<const MemMap> map, std::optional<std::string> lower,
              std::optional<std::string> upper)
      : map_(std::move(map)),
        lower_(std::move(lower)),
        upper_(std::move(upper)),
        it_(map_->end()) {}

  bool Valid() const override { return valid_; }

  void SeekToFirst() override {
    it_ = lower_ ? map_->lower_bound(*lower_) : map_->begin();
    SettleForward();
  }

  void SeekToLast() override {
    it_ = upper_ ? map_->lower_bound(*upper_) : map_->end();
    StepBack();
  }

  void Seek(std::string_view target) override {
    if (lower_ && target < *lower_) {
      target = *lower_;
    }
    it_ = map_->lower_bound(target);
    SettleForward();
  }

  void SeekForPrev(std::string_view target) override {
    if (upper_ && target >= *upper_) {
      SeekToLast();
      return;
    }
    it_ = map_->upper_bound(target);
    StepBack();
  }

  void Next() override {
    assert(valid_);
    if (!valid_) {
      return;
    }
    ++it_;
    SettleForward();
  }

  void Prev() override {
    assert(valid_);
    if (!valid_) {
      return;
    }
    StepBack();
  }

  std::string_view key() const override {
    assert(valid_);
    return it_->first;
  }
  std::string_view value() const override {
    assert(valid_);
    return it_->second;
  }
  Status status() const override { return Status::OK(); }

 private:
  // it_ points at the candidate; valid if it exists and is below the upper bound.
  void SettleForward() { valid_ = it_ != map_->end() && (!upper_ || it_->first < *upper_); }

  // Moves to the entry before it_; valid if there is one and it is not below the lower bound.
  void StepBack() {
    if (it_ == map_->begin()) {
      valid_ = false;
      return;
    }
    --it_;
    valid_ = !lower_ || it_->first >= *lower_;
  }

  const std::shared_ptr<const MemMap> map_;
  const std::optional<std::string> lower_;
  const std::optional<std::string> upper_;
  MemMap::const_iterator it_;
  bool valid_ = false;
};

}  // namespace

std::unique_ptr<Iterator> NewMemIterator(std::shared_ptr<const MemMap> map,
                                         std::optional<std::string> lower,
                                         std::optional<std::string> upper) {
  return std::make_unique<MemIterator>(std::move(map), std::move(lower), std::move(upper));
}

}  // namespace micedb::storage
