#include "services/store/io/fault_injecting_file_system.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/common/status/status_macros.h"

namespace apogee::store {
namespace {

std::string ParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

FaultRule Fault(FaultOp op, std::string path_contains, int skip, int times) {
  FaultRule rule;
  rule.op = op;
  rule.path_contains = std::move(path_contains);
  rule.skip = skip;
  rule.times = times;
  return rule;
}

FaultRule ShortWrite(uint64_t bytes_written, std::string path_contains, int skip) {
  FaultRule rule = Fault(FaultOp::kAppend, std::move(path_contains), skip);
  rule.short_write_bytes = bytes_written;
  return rule;
}

class FaultInjectingFileSystem::Writable final : public WritableFile {
 public:
  Writable(FaultInjectingFileSystem* fs, std::unique_ptr<WritableFile> base, uint64_t generation)
      : fs_(fs), base_(std::move(base)), generation_(generation) {}
  absl::Status Append(absl::string_view data) override {
    return fs_->HandleAppend(generation_, base_.get(), data);
  }
  absl::Status Sync() override { return fs_->HandleSync(generation_, base_.get()); }
  absl::Status Truncate(uint64_t size) override {
    return fs_->HandleTruncate(generation_, base_.get(), size);
  }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectingFileSystem* const fs_;
  const std::unique_ptr<WritableFile> base_;
  const uint64_t generation_;
};

class FaultInjectingFileSystem::Readable final : public RandomAccessFile {
 public:
  Readable(FaultInjectingFileSystem* fs, std::unique_ptr<RandomAccessFile> base,
           uint64_t generation)
      : fs_(fs), base_(std::move(base)), generation_(generation) {}
  absl::StatusOr<absl::string_view> Read(uint64_t offset, size_t n, char* scratch) const override {
    return fs_->HandleRead(generation_, base_.get(), offset, n, scratch);
  }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultInjectingFileSystem* const fs_;
  const std::unique_ptr<RandomAccessFile> base_;
  const uint64_t generation_;
};

FaultInjectingFileSystem::FaultInjectingFileSystem(FileSystem* base) : base_(base) {}

void FaultInjectingFileSystem::AddFault(FaultRule rule) {
  absl::MutexLock lock(&mu_);
  rules_.push_back(ActiveRule{std::move(rule)});
}

void FaultInjectingFileSystem::ClearFaults() {
  absl::MutexLock lock(&mu_);
  rules_.clear();
}

void FaultInjectingFileSystem::SetCapacity(std::optional<uint64_t> bytes) {
  absl::MutexLock lock(&mu_);
  capacity_ = bytes;
}

uint64_t FaultInjectingFileSystem::used_bytes() const {
  absl::MutexLock lock(&mu_);
  return UsedLocked();
}

int FaultInjectingFileSystem::faults_fired() const {
  absl::MutexLock lock(&mu_);
  return faults_fired_;
}

int FaultInjectingFileSystem::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

uint64_t FaultInjectingFileSystem::UsedLocked() const {
  uint64_t used = 0;
  for (const auto& [path, state] : files_) used += state.size;
  return used;
}

absl::Status FaultInjectingFileSystem::Fire(FaultOp op, const std::string& path,
                                            uint64_t* short_write) {
  std::optional<FaultRule> fired;
  {
    absl::MutexLock lock(&mu_);
    for (ActiveRule& active : rules_) {
      const FaultRule& rule = active.rule;
      if (rule.op != op || !absl::StrContains(path, rule.path_contains)) continue;
      if (active.seen++ < rule.skip) continue;
      if (rule.times >= 0 && active.fired >= rule.times) continue;
      ++active.fired;
      ++faults_fired_;
      fired = rule;
      break;
    }
  }
  if (!fired.has_value()) return absl::OkStatus();
  if (fired->hook) fired->hook();
  if (short_write != nullptr) *short_write = fired->short_write_bytes;
  return fired->error;
}

absl::Status FaultInjectingFileSystem::CheckHandleLocked(uint64_t generation,
                                                         const std::string& path) const {
  if (generation == generation_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": file handle was opened before the simulated crash"));
}

FaultInjectingFileSystem::FileState& FaultInjectingFileSystem::TrackLocked(const std::string& path,
                                                                           bool created) {
  auto [it, inserted] = files_.try_emplace(path);
  if (inserted) {
    it->second.entry_durable = !created;
    if (!created) {
      const absl::StatusOr<uint64_t> size = base_->FileSize(path);
      it->second.size = size.ok() ? *size : 0;
      it->second.synced = it->second.size;
    }
  }
  return it->second;
}

absl::Status FaultInjectingFileSystem::HandleAppend(uint64_t generation, WritableFile* base,
                                                    absl::string_view data) {
  uint64_t short_write = 0;
  absl::Status error = Fire(FaultOp::kAppend, base->path(), &short_write);
  absl::MutexLock lock(&mu_);
  APOGEE_RETURN_IF_ERROR(CheckHandleLocked(generation, base->path()));
  FileState& state = TrackLocked(base->path(), /*created=*/false);
  uint64_t allowed = data.size();
  if (!error.ok()) allowed = std::min<uint64_t>(allowed, short_write);
  if (capacity_.has_value()) {
    const uint64_t used = UsedLocked();
    const uint64_t room = used >= *capacity_ ? 0 : *capacity_ - used;
    if (room < allowed) {
      allowed = room;
      error = absl::ErrnoToStatus(ENOSPC, absl::StrCat("write ", base->path()));
    }
  }
  if (allowed > 0) {
    APOGEE_RETURN_IF_ERROR(base->Append(data.substr(0, allowed)));
    state.size += allowed;
  }
  return error;
}

absl::Status FaultInjectingFileSystem::HandleSync(uint64_t generation, WritableFile* base) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kSync, base->path()));
  absl::MutexLock lock(&mu_);
  APOGEE_RETURN_IF_ERROR(CheckHandleLocked(generation, base->path()));
  APOGEE_RETURN_IF_ERROR(base->Sync());
  ++syncs_;
  FileState& state = TrackLocked(base->path(), /*created=*/false);
  state.synced = state.size;
  return absl::OkStatus();
}

absl::Status FaultInjectingFileSystem::HandleTruncate(uint64_t generation, WritableFile* base,
                                                      uint64_t size) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kTruncate, base->path()));
  absl::MutexLock lock(&mu_);
  APOGEE_RETURN_IF_ERROR(CheckHandleLocked(generation, base->path()));
  APOGEE_RETURN_IF_ERROR(base->Truncate(size));
  FileState& state = TrackLocked(base->path(), /*created=*/false);
  state.size = size;
  state.synced = std::min(state.synced, size);
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> FaultInjectingFileSystem::HandleRead(uint64_t generation,
                                                                       const RandomAccessFile* base,
                                                                       uint64_t offset, size_t n,
                                                                       char* scratch) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kRead, base->path()));
  absl::MutexLock lock(&mu_);
  APOGEE_RETURN_IF_ERROR(CheckHandleLocked(generation, base->path()));
  return base->Read(offset, n, scratch);
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::OpenForAppend(
    const std::string& path) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kOpen, path));
  absl::MutexLock lock(&mu_);
  APOGEE_ASSIGN_OR_RETURN(const bool existed, base_->Exists(path));
  APOGEE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->OpenForAppend(path));
  TrackLocked(path, /*created=*/!existed);
  return std::make_unique<Writable>(this, std::move(file), generation_);
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> FaultInjectingFileSystem::OpenForRead(
    const std::string& path) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kOpen, path));
  absl::MutexLock lock(&mu_);
  APOGEE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, base_->OpenForRead(path));
  TrackLocked(path, /*created=*/false);
  return std::make_unique<Readable>(this, std::move(file), generation_);
}

absl::StatusOr<uint64_t> FaultInjectingFileSystem::FileSize(const std::string& path) {
  absl::MutexLock lock(&mu_);
  return base_->FileSize(path);
}

absl::Status FaultInjectingFileSystem::DeleteFile(const std::string& path) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kDelete, path));
  absl::MutexLock lock(&mu_);
  APOGEE_RETURN_IF_ERROR(base_->DeleteFile(path));
  files_.erase(path);
  return absl::OkStatus();
}

absl::Status FaultInjectingFileSystem::CreateDirs(const std::string& path) {
  absl::MutexLock lock(&mu_);
  return base_->CreateDirs(path);
}

absl::Status FaultInjectingFileSystem::SyncDir(const std::string& path) {
  APOGEE_RETURN_IF_ERROR(Fire(FaultOp::kSyncDir, path));
  absl::MutexLock lock(&mu_);
  APOGEE_RETURN_IF_ERROR(base_->SyncDir(path));
  for (auto& [file, state] : files_) {
    if (ParentDir(file) == path) state.entry_durable = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FaultInjectingFileSystem::ListDir(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  return base_->ListDir(path);
}

absl::StatusOr<bool> FaultInjectingFileSystem::Exists(const std::string& path) {
  absl::MutexLock lock(&mu_);
  return base_->Exists(path);
}

absl::StatusOr<DiskSpace> FaultInjectingFileSystem::GetDiskSpace(const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (!capacity_.has_value()) return base_->GetDiskSpace(path);
  const uint64_t used = UsedLocked();
  return DiskSpace{*capacity_, used >= *capacity_ ? 0 : *capacity_ - used};
}

absl::Status FaultInjectingFileSystem::Crash() {
  absl::MutexLock lock(&mu_);
  ++generation_;
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& path = it->first;
    FileState& state = it->second;
    if (!state.entry_durable) {
      APOGEE_RETURN_IF_ERROR(base_->DeleteFile(path));
      files_.erase(it++);
      continue;
    }
    if (state.size > state.synced) {
      APOGEE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->OpenForAppend(path));
      APOGEE_RETURN_IF_ERROR(file->Truncate(state.synced));
      state.size = state.synced;
    }
    ++it;
  }
  return absl::OkStatus();
}

}  // namespace apogee::store
