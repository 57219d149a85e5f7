// The only door between the store and the disk. Every byte the store writes or
// reads goes through a FileSystem so tests can swap in
// FaultInjectingFileSystem (short writes, fsync errors, ENOSPC, crashes that
// drop unsynced data) without touching the code under test.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apogee::store {

// A file written only at its end (O_APPEND).
// Thread-safety: Append and Truncate must come from one thread at a time (the
// writer); Sync may run concurrently with them from another thread.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends all of `data`. On error a prefix of `data` may have reached the
  // file; the caller restores a known end with Truncate.
  virtual absl::Status Append(absl::string_view data) = 0;

  // Makes everything appended so far durable (fdatasync).
  virtual absl::Status Sync() = 0;

  // Cuts the file to `size` bytes; later appends continue from there.
  virtual absl::Status Truncate(uint64_t size) = 0;

  virtual const std::string& path() const = 0;
};

// Positional reads. Thread-safe: Read may be called from any thread at once.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;

  // Reads up to `n` bytes at `offset` into `scratch` and returns a view of
  // what was read, shorter than `n` only at end of file.
  virtual absl::StatusOr<absl::string_view> Read(uint64_t offset, size_t n,
                                                 char* scratch) const = 0;

  virtual const std::string& path() const = 0;
};

struct DiskSpace {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};

// Thread-safe: every method may be called from any thread. Errors carry the
// operation and the path, e.g. `write /data/commitlog/0…0.log: No space left
// on device` with the code absl::ErrnoToStatus gives (ENOSPC ->
// RESOURCE_EXHAUSTED, ENOENT -> NOT_FOUND).
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for appending, creating it if missing. A new file is durable
  // only after SyncDir of its directory.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) = 0;

  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenForRead(
      const std::string& path) = 0;

  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;

  // Removes a file. Open handles keep reading the old data (POSIX unlink).
  virtual absl::Status DeleteFile(const std::string& path) = 0;

  // mkdir -p.
  virtual absl::Status CreateDirs(const std::string& path) = 0;

  // fsyncs a directory so file creations and deletions in it are durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;

  // Names (not paths) of the entries of a directory, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;

  virtual absl::StatusOr<bool> Exists(const std::string& path) = 0;

  // Size and free space of the file system holding `path` (statvfs).
  virtual absl::StatusOr<DiskSpace> GetDiskSpace(const std::string& path) = 0;
};

// Joins a directory and a name with one '/'.
std::string JoinPath(absl::string_view dir, absl::string_view name);

}  // namespace apogee::store
