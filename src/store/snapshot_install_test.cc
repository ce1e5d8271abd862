// Crash safety of snapshot install (docs/store-format.md, "Snapshots"): a power loss at each
// step of staging and installing, with a file system that drops what was not synced and a
// FaultEngine that does the same, ends with the replica equal to the leader's snapshot or with
// its old state intact (the install given up, to be sent again) -- never with a column family
// silently emptied.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "storage/fault_engine.h"
#include "storage/mem_engine.h"
#include "store/keys.h"
#include "store/snapshot_files.h"
#include "store/snapshot_stage.h"

namespace micedb::store {
namespace {

namespace fs = std::filesystem;
using storage::Cf;
using ::testing::HasSubstr;

// Real files, with a record of what was synced: PowerLoss() truncates every file to its last
// synced length and deletes files and directories whose names were never synced into their
// parent directory (the model of LevelDB's fault-injection Env).
class PowerLossFs final : public StagingFs {
 public:
  Status CreateDir(const std::string& dir) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fs::exists(dir)) dirs_[dir] = false;
    return PosixStagingFs()->CreateDir(dir);
  }

  Result<std::unique_ptr<StagingFile>> Create(const std::string& path) override {
    MICEDB_ASSIGN_OR_RETURN(auto real, PosixStagingFs()->Create(path));
    std::lock_guard<std::mutex> l(mu_);
    files_[path] = FileState{};
    return std::unique_ptr<StagingFile>(std::make_unique<File>(this, path, std::move(real)));
  }

  Status SyncDir(const std::string& dir) override {
    MICEDB_RETURN_IF_ERROR(PosixStagingFs()->SyncDir(dir));
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [path, st] : files_) {
      if (fs::path(path).parent_path() == fs::path(dir)) st.name_synced = true;
    }
    for (auto& [path, synced] : dirs_) {
      if (fs::path(path).parent_path() == fs::path(dir)) synced = true;
    }
    return Status::OK();
  }

  void PowerLoss() {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [path, st] : files_) {
      if (!fs::exists(path)) continue;
      if (!st.name_synced) {
        fs::remove(path);
      } else {
        fs::resize_file(path, st.synced);
      }
    }
    for (auto& [path, synced] : dirs_) {
      if (!synced) fs::remove_all(path);
    }
    files_.clear();
    dirs_.clear();
  }

 private:
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
    bool name_synced = false;
  };

  class File final : public StagingFile {
   public:
    File(PowerLossFs* fs, std::string path, std::unique_ptr<StagingFile> real)
        : fs_(fs), path_(std::move(path)), real_(std::move(real)) {}
    Status Append(std::string_view data) override {
      MICEDB_RETURN_IF_ERROR(real_->Append(data));
      std::lock_guard<std::mutex> l(fs_->mu_);
      fs_->files_[path_].size += data.size();
      return Status::OK();
    }
    Status Sync() override {
      MICEDB_RETURN_IF_ERROR(real_->Sync());
      std::lock_guard<std::mutex> l(fs_->mu_);
      FileState& st = fs_->files_[path_];
      st.synced = st.size;
      return Status::OK();
    }
    Status Close() override { return real_->Close(); }

   private:
    PowerLossFs* const fs_;
    const std::string path_;
    std::unique_ptr<StagingFile> real_;
  };

  std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::map<std::string, bool> dirs_;  // created here; whether the name is synced
};

constexpr uint64_t kRegion = 7;

// What a test compares: every data column family, and the region's raft records.
std::string DataOf(storage::Engine* e) {
  std::string all;
  for (Cf cf : kDataCfs) {
    auto it = e->NewIterator(cf, storage::ReadOptions{});
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      all += fmt::format("{}:{}={};", static_cast<int>(cf), it->key(), it->value());
    }
  }
  return all;
}

class SnapshotInstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() /
             fmt::format("snapinstall-{}-{}", ::getpid(),
                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
    fs::create_directories(root_ + "/snap");

    // The leader's region: keys in default and write; nothing in lock (an empty family sends
    // no file).
    storage::WriteBatch lb;
    for (int i = 0; i < 50; ++i) lb.Put(Cf::kDefault, fmt::format("rk{:03}", i), "new");
    lb.Put(Cf::kWrite, "rw1", "w");
    ASSERT_TRUE(leader_.Write(lb, storage::WriteOptions{}).ok());

    // The follower: an older replica of the same region, with keys the leader has since
    // deleted (one in lock), its raft state and a log.
    old_desc_.set_id(kRegion);
    old_desc_.mutable_epoch()->set_conf_ver(1);
    old_apply_.set_applied_index(10);
    old_apply_.set_applied_term(2);
    old_apply_.set_truncated_index(5);
    old_apply_.set_truncated_term(2);
    old_hs_.set_term(4);
    old_hs_.set_vote(2);
    old_hs_.set_commit(10);
    storage::WriteBatch fb;
    fb.Put(Cf::kDefault, "rk000", "old");
    fb.Put(Cf::kDefault, "rgone", "stale");
    fb.Put(Cf::kLock, "rlocked", "stale lock");
    fb.Put(Cf::kRaft, RegionKey(kRegion), old_desc_.SerializeAsString());
    fb.Put(Cf::kRaft, ApplyStateKey(kRegion), old_apply_.SerializeAsString());
    fb.Put(Cf::kRaft, HardStateKey(kRegion), old_hs_.SerializeAsString());
    for (uint64_t i = 6; i <= 12; ++i) fb.Put(Cf::kRaft, RaftLogKey(kRegion, i), "entry");
    ASSERT_TRUE(follower_.Write(fb, storage::WriteOptions{.sync = true}).ok());
    old_data_ = DataOf(&follower_);

    SnapshotDescriptor sd;
    *sd.mutable_region() = old_desc_;
    sd.mutable_region()->mutable_epoch()->set_conf_ver(2);
    NodeAddress* na = sd.add_addresses();
    na->set_node_id(3);
    na->set_peer_addr("n3:1");
    snap_.set_data(sd.SerializeAsString());
    snap_.mutable_metadata()->set_index(100);
    snap_.mutable_metadata()->set_term(3);
    for (uint64_t v : {1, 2, 3}) snap_.mutable_metadata()->mutable_conf_state()->add_voters(v);
  }

  void TearDown() override { fs::remove_all(root_); }

  // Exports the leader's region, then streams it through a stager into the follower's staging
  // directory, as the receiving transport does.
  StagedSnapshot Stage() {
    const std::string send = root_ + "/send";
    auto view = leader_.GetSnapshot();
    auto files = ExportSnapshotFiles(&leader_, view.get(), "", EngineRangeEnd(""), send);
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    auto sent = DescribeExportedFiles(send, *files);
    EXPECT_TRUE(sent.ok()) << sent.status().ToString();
    SnapshotStager stager(&fs_, root_ + "/snap/recv-1");
    EXPECT_TRUE(stager.Open().ok());
    for (const SnapshotFileMeta& m : sent->files) {
      std::ifstream in(SnapshotFilePath(send, static_cast<Cf>(m.cf()), m.index()),
                       std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (size_t at = 0; at < bytes.size(); at += 100) {  // in chunks, as they arrive
        EXPECT_TRUE(
            stager
                .Append(static_cast<Cf>(m.cf()), m.index(), std::string_view(bytes).substr(at, 100))
                .ok());
      }
    }
    auto staged = stager.Finish(sent->files);
    EXPECT_TRUE(staged.ok()) << staged.status().ToString();
    fs::remove_all(send);
    return *staged;
  }

  // Installs `staged`, "crashing" (stopping where it is) right after `crash_after`; then the
  // power goes: both the file system and the engine lose what was not synced.
  void InstallAndCrash(const StagedSnapshot& staged, InstallStep crash_after) {
    auto r = InstallStagedSnapshot(
        &follower_, kRegion, staged, snap_, old_hs_, [crash_after](InstallStep step) {
          return step == crash_after ? Status::Aborted("crash") : Status::OK();
        });
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.status().message(), "crash");
    PowerLoss();
  }

  void PowerLoss() {
    fs_.PowerLoss();
    follower_.SimulatePowerLoss();
  }

  // The follower equals the leader's snapshot: its data, descriptor, apply state, log reset.
  void ExpectInstalled() {
    EXPECT_EQ(DataOf(&follower_), DataOf(&leader_));
    auto apply = follower_.Get(Cf::kRaft, ApplyStateKey(kRegion));
    ASSERT_TRUE(apply.ok());
    ApplyState a;
    ASSERT_TRUE(a.ParseFromString(*apply));
    EXPECT_EQ(a.applied_index(), 100u);
    EXPECT_EQ(a.truncated_index(), 100u);
    auto desc = follower_.Get(Cf::kRaft, RegionKey(kRegion));
    ASSERT_TRUE(desc.ok());
    RegionDescriptor d;
    ASSERT_TRUE(d.ParseFromString(*desc));
    EXPECT_EQ(d.epoch().conf_ver(), 2u);
    EXPECT_EQ(d.conf_state().voters_size(), 3);
    EXPECT_TRUE(follower_.Get(Cf::kRaft, RaftLogKey(kRegion, 8)).status().IsNotFound());
    ExpectNoRecord();
  }

  // The follower kept its old state whole: data, apply state, hard state (vote) and log.
  void ExpectOldState() {
    EXPECT_EQ(DataOf(&follower_), old_data_);
    auto apply = follower_.Get(Cf::kRaft, ApplyStateKey(kRegion));
    ASSERT_TRUE(apply.ok());
    EXPECT_EQ(*apply, old_apply_.SerializeAsString());
    auto hs = follower_.Get(Cf::kRaft, HardStateKey(kRegion));
    ASSERT_TRUE(hs.ok());
    EXPECT_EQ(*hs, old_hs_.SerializeAsString());
    EXPECT_TRUE(follower_.Get(Cf::kRaft, RaftLogKey(kRegion, 12)).ok());
    ExpectNoRecord();
  }

  void ExpectNoRecord() {
    EXPECT_TRUE(follower_.Get(Cf::kRaft, PendingSnapshotKey(kRegion)).status().IsNotFound());
  }

  std::string root_;
  PowerLossFs fs_;
  storage::MemEngine leader_;
  storage::FaultEngine follower_;
  RegionDescriptor old_desc_;
  ApplyState old_apply_;
  raft::HardState old_hs_;
  raft::Snapshot snap_;
  std::string old_data_;
};

TEST_F(SnapshotInstallTest, AnUninterruptedInstallEqualsTheLeader) {
  StagedSnapshot staged = Stage();
  ASSERT_EQ(staged.files.size(), 2u);  // default and write; lock is empty
  auto r = InstallStagedSnapshot(&follower_, kRegion, staged, snap_, old_hs_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->apply.applied_index(), 100u);
  PowerLoss();
  ExpectInstalled();
  EXPECT_FALSE(fs::exists(staged.dir));
}

// A power loss after each durable step: the restart's redo finishes the install from the staged
// files, which were synced before the record that names them.
class CrashAtStep : public SnapshotInstallTest,
                    public ::testing::WithParamInterface<InstallStep> {};

TEST_P(CrashAtStep, TheRestartFinishesTheInstall) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, GetParam());
  auto redo = FinishPendingInstall(&follower_, kRegion);
  ASSERT_TRUE(redo.ok()) << redo.status().ToString();
  // After the final batch there is nothing left to redo.
  EXPECT_EQ(redo->has_value(), GetParam() != InstallStep::kFinished);
  ExpectInstalled();
  // A second crash during the redo, and a third start: still the same.
  PowerLoss();
  ASSERT_TRUE(FinishPendingInstall(&follower_, kRegion).ok());
  ExpectInstalled();
}

INSTANTIATE_TEST_SUITE_P(Steps, CrashAtStep,
                         ::testing::Values(InstallStep::kRecorded, InstallStep::kRangeCleared,
                                           InstallStep::kIngested, InstallStep::kFinished),
                         [](const ::testing::TestParamInfo<InstallStep>& info) {
                           switch (info.param) {
                             case InstallStep::kRecorded:
                               return std::string("AfterTheRecord");
                             case InstallStep::kRangeCleared:
                               return std::string("AfterTheRangeClear");
                             case InstallStep::kIngested:
                               return std::string("AfterTheIngest");
                             case InstallStep::kFinished:
                               return std::string("AfterTheFinalBatch");
                           }
                           return std::string("Unknown");
                         });

// A crash in the middle of the redo itself (after it cleared the range again) is redone too.
TEST_F(SnapshotInstallTest, ACrashDuringTheRedoIsRedone) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, InstallStep::kRecorded);
  auto redo = FinishPendingInstall(&follower_, kRegion, [](InstallStep step) {
    return step == InstallStep::kRangeCleared ? Status::Aborted("crash") : Status::OK();
  });
  ASSERT_FALSE(redo.ok());
  PowerLoss();
  ASSERT_TRUE(FinishPendingInstall(&follower_, kRegion).ok());
  ExpectInstalled();
}

// Power lost while the files are still being received (none synced, no record): the region
// is untouched and nothing is pending.
TEST_F(SnapshotInstallTest, APowerLossWhileStagingLeavesTheRegionAlone) {
  SnapshotStager stager(&fs_, root_ + "/snap/recv-2");
  ASSERT_TRUE(stager.Open().ok());
  ASSERT_TRUE(stager.Append(Cf::kDefault, 0, "partial sst").ok());
  PowerLoss();
  EXPECT_FALSE(fs::exists(root_ + "/snap/recv-2"));
  auto redo = FinishPendingInstall(&follower_, kRegion);
  ASSERT_TRUE(redo.ok());
  EXPECT_FALSE(redo->has_value());
  ExpectOldState();
}

// Damage to a staged file, found by the redo while the old data is intact: the install is
// given up cleanly (record and directory gone, old state whole, to be sent again) -- a lost
// file is not an empty column family.
void RemoveFile(const StagedSnapshot& staged) {
  const SnapshotFileMeta& m = staged.files.front();
  fs::remove(SnapshotFilePath(staged.dir, static_cast<Cf>(m.cf()), m.index()));
}

void CorruptFile(const StagedSnapshot& staged) {
  const SnapshotFileMeta& m = staged.files.front();
  std::fstream f(SnapshotFilePath(staged.dir, static_cast<Cf>(m.cf()), m.index()),
                 std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(m.size() / 2));
  f.put('\x5a');
}

TEST_F(SnapshotInstallTest, AMissingFileBeforeTheClearGivesUpTheInstall) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, InstallStep::kRecorded);
  RemoveFile(staged);
  auto redo = FinishPendingInstall(&follower_, kRegion);
  ASSERT_TRUE(redo.ok()) << redo.status().ToString();
  EXPECT_FALSE(redo->has_value());
  ExpectOldState();
  EXPECT_FALSE(fs::exists(staged.dir));
  PowerLoss();  // the give-up is durable
  ExpectOldState();
}

TEST_F(SnapshotInstallTest, ACorruptFileBeforeTheClearGivesUpTheInstall) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, InstallStep::kRecorded);
  CorruptFile(staged);
  auto redo = FinishPendingInstall(&follower_, kRegion);
  ASSERT_TRUE(redo.ok()) << redo.status().ToString();
  EXPECT_FALSE(redo->has_value());
  ExpectOldState();
}

// Once the old data is deleted the replica can neither go back nor forward: the node refuses to
// start, naming the file, and the record stays (nothing serves from the emptied range).
TEST_F(SnapshotInstallTest, AMissingFileAfterTheClearStopsTheNode) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, InstallStep::kRangeCleared);
  RemoveFile(staged);
  auto redo = FinishPendingInstall(&follower_, kRegion);
  ASSERT_FALSE(redo.ok());
  EXPECT_EQ(redo.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(redo.status().message(), HasSubstr("is missing"));
  EXPECT_THAT(redo.status().message(), HasSubstr("node remove"));
  EXPECT_TRUE(follower_.Get(Cf::kRaft, PendingSnapshotKey(kRegion)).ok());
  auto hs = follower_.Get(Cf::kRaft, HardStateKey(kRegion));
  ASSERT_TRUE(hs.ok());
  EXPECT_EQ(*hs, old_hs_.SerializeAsString());  // the vote is never lost
}

TEST_F(SnapshotInstallTest, ACorruptFileAfterTheClearStopsTheNode) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, InstallStep::kIngested);
  CorruptFile(staged);
  auto redo = FinishPendingInstall(&follower_, kRegion);
  ASSERT_FALSE(redo.ok());
  EXPECT_THAT(redo.status().message(), HasSubstr("is damaged"));
}

// The first install checks the files before it writes anything.
TEST_F(SnapshotInstallTest, TheFirstInstallRefusesAMissingFile) {
  StagedSnapshot staged = Stage();
  RemoveFile(staged);
  auto r = InstallStagedSnapshot(&follower_, kRegion, staged, snap_, old_hs_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_THAT(r.status().message(), HasSubstr("is missing"));
  ExpectOldState();
  EXPECT_FALSE(fs::exists(staged.dir));
}

// A staging directory is always new: one left by an earlier process may be named by a pending
// install that is being finished, and must not be written into.
TEST_F(SnapshotInstallTest, TheStagerNeverReusesADirectory) {
  StagedSnapshot staged = Stage();
  InstallAndCrash(staged, InstallStep::kRangeCleared);
  SnapshotStager again(PosixStagingFs(), staged.dir);
  EXPECT_EQ(again.Open().code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(FinishPendingInstall(&follower_, kRegion).ok());
  ExpectInstalled();
}

// The stager refuses what differs from the sender's list.
TEST_F(SnapshotInstallTest, TheStagerChecksTheSendersList) {
  SnapshotFileMeta m;
  m.set_cf(static_cast<uint32_t>(Cf::kDefault));
  m.set_size(3);
  m.set_crc32c(1);
  SnapshotStager a(&fs_, root_ + "/snap/a");
  ASSERT_TRUE(a.Open().ok());
  ASSERT_TRUE(a.Append(Cf::kDefault, 0, "abc").ok());
  EXPECT_EQ(a.Finish({m}).status().code(), StatusCode::kCorruption);  // checksum
  SnapshotStager b(&fs_, root_ + "/snap/b");
  ASSERT_TRUE(b.Open().ok());
  EXPECT_THAT(b.Finish({m}).status().message(), HasSubstr("never arrived"));
  SnapshotStager c(&fs_, root_ + "/snap/c");
  ASSERT_TRUE(c.Open().ok());
  ASSERT_TRUE(c.Append(Cf::kLock, 0, "abc").ok());
  EXPECT_THAT(c.Finish({}).status().message(), HasSubstr("not in the sender's list"));
}

}  // namespace
}  // namespace micedb::store
