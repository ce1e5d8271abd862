#include "storage/write_batch.h"

#include <string>

namespace micedb::storage {

void WriteBatch::Put(Cf cf, std::string_view key, std::string_view value) {
  ops_.push_back(Op{OpType::kPut, cf, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void WriteBatch::PutOwned(Cf cf, std::string_view key, std::string value) {
  bytes_ += key.size() + value.size();
  ops_.push_back(Op{OpType::kPut, cf, std::string(key), std::move(value)});
}

void WriteBatch::Delete(Cf cf, std::string_view key) {
  ops_.push_back(Op{OpType::kDelete, cf, std::string(key), std::string()});
  bytes_ += key.size();
}

void WriteBatch::DeleteRange(Cf cf, std::string_view begin, std::string_view end) {
  ops_.push_back(Op{OpType::kDeleteRange, cf, std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

void WriteBatch::Clear() {
  ops_.clear();
  bytes_ = 0;
}

Status WriteBatch::Validate() const {
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    if (!IsValidCf(op.cf)) {
      return Status::InvalidArgument("write batch op " + std::to_string(i) + ": column family id " +
                                     std::to_string(static_cast<int>(op.cf)) + " out of range");
    }
    switch (op.type) {
      case OpType::kPut:
      case OpType::kDelete:
        break;
      case OpType::kDeleteRange:
        if (op.key > op.value) {
          return Status::InvalidArgument("write batch op " + std::to_string(i) +
                                         ": DeleteRange begin sorts after end in cf " +
                                         std::string(CfName(op.cf)));
        }
        break;
      default:
        return Status::InvalidArgument("write batch op " + std::to_string(i) + ": unknown op type");
    }
  }
  return Status::OK();
}

}  // namespace micedb::storage
