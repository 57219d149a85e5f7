#include "services/store/testing/fault_rocks_env.h"

#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace apogee::store::testing {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

IOStatus ToIoStatus(const absl::Status& status) {
  if (status.ok()) return IOStatus::OK();
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return IOStatus::NoSpace(message);
    case absl::StatusCode::kNotFound:
      return IOStatus::PathNotFound(message);
    default:
      return IOStatus::IOError(message);
  }
}

// Writes straight through (RocksDB buffers above this); Sync is fdatasync
// under the fault file system's lock, so it is safe beside Append.
class Writable final : public rocksdb::FSWritableFile {
 public:
  Writable(FaultInjectingFileSystem* faults, std::unique_ptr<WritableFile> file)
      : faults_(faults), file_(std::move(file)) {}

  IOStatus Append(const rocksdb::Slice& data, const IOOptions&, IODebugContext*) override {
    if (file_ == nullptr) return IOStatus::IOError("append to a closed file");
    const absl::Status status = file_->Append(absl::string_view(data.data(), data.size()));
    if (status.ok()) {
      size_ += data.size();
    } else {
      // Part of it may have landed (a disk that filled up mid-write).
      absl::StatusOr<uint64_t> size = faults_->FileSize(file_->path());
      if (size.ok()) size_ = *size;
    }
    return ToIoStatus(status);
  }
  IOStatus Truncate(uint64_t size, const IOOptions&, IODebugContext*) override {
    if (file_ == nullptr) return IOStatus::IOError("truncate of a closed file");
    const absl::Status status = file_->Truncate(size);
    if (status.ok()) size_ = size;
    return ToIoStatus(status);
  }
  IOStatus Close(const IOOptions&, IODebugContext*) override {
    file_.reset();
    return IOStatus::OK();
  }
  IOStatus Flush(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  IOStatus Sync(const IOOptions&, IODebugContext*) override {
    if (file_ == nullptr) return IOStatus::IOError("sync of a closed file");
    return ToIoStatus(file_->Sync());
  }
  bool IsSyncThreadSafe() const override { return true; }
  uint64_t GetFileSize(const IOOptions&, IODebugContext*) override { return size_; }

 private:
  FaultInjectingFileSystem* const faults_;
  std::unique_ptr<WritableFile> file_;
  uint64_t size_ = 0;
};

class FaultRocksFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultRocksFileSystem(FaultInjectingFileSystem* faults)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), faults_(faults) {}

  const char* Name() const override { return "apogee.FaultRocksFileSystem"; }

  IOStatus NewWritableFile(const std::string& path, const rocksdb::FileOptions&,
                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                           IODebugContext*) override {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = faults_->OpenForAppend(path);
    if (!file.ok()) return ToIoStatus(file.status());
    // NewWritableFile starts the file empty.
    if (absl::Status truncated = (*file)->Truncate(0); !truncated.ok()) {
      return ToIoStatus(truncated);
    }
    *result = std::make_unique<Writable>(faults_, std::move(*file));
    return IOStatus::OK();
  }

  IOStatus DeleteFile(const std::string& path, const IOOptions&, IODebugContext*) override {
    return ToIoStatus(faults_->DeleteFile(path));
  }

  // RocksDB's recovery from a full disk polls this.
  IOStatus GetFreeSpace(const std::string& path, const IOOptions&, uint64_t* free_space,
                        IODebugContext*) override {
    absl::StatusOr<DiskSpace> space = faults_->GetDiskSpace(path);
    if (!space.ok()) return ToIoStatus(space.status());
    *free_space = space->available_bytes;
    return IOStatus::OK();
  }

 private:
  FaultInjectingFileSystem* const faults_;
};

}  // namespace

FaultRocksEnv::FaultRocksEnv(FaultInjectingFileSystem* faults)
    : env_(rocksdb::NewCompositeEnv(std::make_shared<FaultRocksFileSystem>(faults))) {}

FaultRocksEnv::~FaultRocksEnv() = default;

}  // namespace apogee::store::testing
