#include "storage/engine.h"

namespace micedb::storage {

Status Engine::Put(Cf cf, std::string_view key, std::string_view value, WriteOptions options) {
  WriteBatch batch;
  batch.Put(cf, key, value);
  return Write(batch, options);
}

Status Engine::Delete(Cf cf, std::string_view key, WriteOptions options) {
  WriteBatch batch;
  batch.Delete(cf, key);
  return Write(batch, options);
}

Status Engine::DeleteRange(Cf cf, std::string_view begin, std::string_view end,
                           WriteOptions options) {
  WriteBatch batch;
  batch.DeleteRange(cf, begin, end);
  return Write(batch, options);
}

Result<ExportStats> Engine::ExportSst(Cf cf, std::string_view begin, std::string_view end,
                                      const std::string& path) {
  ReadOptions range;
  range.lower_bound = std::string(begin);
  range.upper_bound = std::string(end);
  return ExportSst(cf, range, path);
}

}  // namespace micedb::storage
