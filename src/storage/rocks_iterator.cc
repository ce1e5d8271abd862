#include "storage/rocks_iterator.h"

#include <cassert>
#include <string>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>

#include "storage/rocks_status.h"

namespace micedb::storage {
namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

class RocksIterator final : public Iterator {
 public:
  RocksIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* handle, Cf cf,
                const rocksdb::Snapshot* snapshot, std::optional<std::string> lower,
                std::optional<std::string> upper)
      : cf_(cf), lower_(std::move(lower)), upper_(std::move(upper)) {
    rocksdb::ReadOptions options;
    options.snapshot = snapshot;
    // RocksDB keeps pointers to the bound slices; they live as long as this object.
    if (lower_) {
      lower_slice_ = ToSlice(*lower_);
      options.iterate_lower_bound = &lower_slice_;
    }
    if (upper_) {
      upper_slice_ = ToSlice(*upper_);
      options.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(db->NewIterator(options, handle));
  }

  bool Valid() const override { return it_->Valid(); }
  void SeekToFirst() override { it_->SeekToFirst(); }
  void SeekToLast() override { it_->SeekToLast(); }
  void Seek(std::string_view target) override { it_->Seek(ToSlice(target)); }
  void SeekForPrev(std::string_view target) override { it_->SeekForPrev(ToSlice(target)); }

  void Next() override {
    assert(it_->Valid());
    if (it_->Valid()) {
      it_->Next();
    }
  }
  void Prev() override {
    assert(it_->Valid());
    if (it_->Valid()) {
      it_->Prev();
    }
  }

  std::string_view key() const override { return ToView(it_->key()); }
  std::string_view value() const override { return ToView(it_->value()); }

  Status status() const override {
    return FromRocks(it_->status(), "iterator over column family " + std::string(CfName(cf_)));
  }

 private:
  const Cf cf_;
  const std::optional<std::string> lower_;
  const std::optional<std::string> upper_;
  rocksdb::Slice lower_slice_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;  // last: destroyed before the bounds it points to
};

}  // namespace

std::unique_ptr<Iterator> NewRocksIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* handle,
                                           Cf cf, const rocksdb::Snapshot* snapshot,
                                           std::optional<std::string> lower,
                                           std::optional<std::string> upper) {
  return std::make_unique<RocksIterator>(db, handle, cf, snapshot, std::move(lower),
                                         std::move(upper));
}

}  // namespace micedb::storage
