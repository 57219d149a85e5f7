// FileSystem over POSIX calls (open/pwrite/fdatasync/statvfs).
#pragma once

#include "services/store/io/file_system.h"

namespace apogee::store {

// Thread-safe and stateless; handles it returns follow their own contracts.
class PosixFileSystem final : public FileSystem {
 public:
  // A process-wide instance.
  static PosixFileSystem* Default();

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status CreateDirs(const std::string& path) override;
  absl::Status SyncDir(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::StatusOr<bool> Exists(const std::string& path) override;
  absl::StatusOr<DiskSpace> GetDiskSpace(const std::string& path) override;
};

}  // namespace apogee::store
