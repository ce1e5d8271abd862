#include "storage/sst_file.h"

#include <filesystem>
#include <memory>
#include <system_error>

#include <rocksdb/env.h>
#include <rocksdb/iterator.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table_properties.h>

#include "storage/rocks_status.h"

namespace micedb::storage {
namespace {

void RemoveQuietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);  // best effort: the caller already has the real error
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

}  // namespace

Result<ExportStats> WriteSstFile(Iterator& it, const rocksdb::Options& options,
                                 const std::string& path) {
  it.SeekToFirst();
  if (!it.Valid()) {
    MICEDB_RETURN_IF_ERROR(it.status());
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (ec) {
      return Status::IoError("remove old SST " + path + ": " + ec.message());
    }
    return ExportStats{};
  }

  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
  Status st = FromRocks(writer.Open(path), "open SST for writing " + path);
  if (!st.ok()) {
    RemoveQuietly(path);
    return st;
  }
  for (; it.Valid(); it.Next()) {
    st = FromRocks(writer.Put(ToSlice(it.key()), ToSlice(it.value())), "write SST " + path);
    if (!st.ok()) {
      break;
    }
  }
  if (st.ok()) {
    st = it.status();
  }
  rocksdb::ExternalSstFileInfo info;
  if (st.ok()) {
    st = FromRocks(writer.Finish(&info), "finish SST " + path);
  }
  if (!st.ok()) {
    RemoveQuietly(path);
    return st;
  }
  return ExportStats{static_cast<uint64_t>(info.num_entries), info.file_size};
}

Status ReadSstFile(const std::string& path,
                   const std::function<void(std::string_view key, std::string_view value)>& fn) {
  rocksdb::Options options;
  rocksdb::SstFileReader reader(options);
  MICEDB_RETURN_IF_ERROR(FromRocks(reader.Open(path), "open SST " + path));
  MICEDB_RETURN_IF_ERROR(FromRocks(reader.VerifyChecksum(), "verify SST " + path));
  std::shared_ptr<const rocksdb::TableProperties> props = reader.GetTableProperties();
  if (props == nullptr) {
    return Status::Corruption("SST " + path + " has no table properties");
  }
  if (props->num_deletions != 0 || props->num_range_deletions != 0 ||
      props->num_merge_operands != 0) {
    return Status::NotSupported("SST " + path +
                                " holds deletions or merges; only puts can be ingested here");
  }
  rocksdb::ReadOptions read_options;
  read_options.verify_checksums = true;
  std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(read_options));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    fn(std::string_view(it->key().data(), it->key().size()),
       std::string_view(it->value().data(), it->value().size()));
  }
  return FromRocks(it->status(), "read SST " + path);
}

}  // namespace micedb::storage
