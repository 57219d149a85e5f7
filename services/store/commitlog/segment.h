// One commit-log file: the bytes [start, start + size) of the log, named by
// its start offset (20 decimal digits + ".log").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/store/io/file_system.h"

namespace apogee::store {

// Thread-safety: Read, Sync, Seal and the accessors may be called from any
// thread. Append and Truncate come only from the log's single writer (the
// group-commit leader), never concurrently with each other.
class Segment {
 public:
  static std::string FileName(int64_t start_offset);
  // The start offset encoded in a segment file name; nullopt for other names.
  static std::optional<int64_t> ParseFileName(absl::string_view name);

  // Opens (creating when `writable` and missing) the segment starting at
  // `start_offset` in `dir`. `size` is the number of valid bytes.
  static absl::StatusOr<std::shared_ptr<Segment>> Open(FileSystem* fs, const std::string& dir,
                                                       int64_t start_offset, uint64_t size,
                                                       bool writable);

  int64_t start() const { return start_; }
  // End offset of the bytes written to this segment and published.
  int64_t end() const { return end_.load(std::memory_order_acquire); }
  void set_end(int64_t end) { end_.store(end, std::memory_order_release); }
  const std::string& path() const { return path_; }
  bool sealed() const;

  // Reads `n` bytes at commit-log offset `offset` (not clamped to end()).
  absl::StatusOr<absl::string_view> Read(int64_t offset, size_t n, char* scratch) const;

  absl::Status Append(absl::string_view data);
  // Cuts the file back to commit-log offset `offset`.
  absl::Status TruncateTo(int64_t offset);
  // fdatasync; OK and a no-op on a sealed segment (synced when sealed).
  absl::Status Sync();
  // Syncs and drops the write handle: no more appends.
  absl::Status Seal();

 private:
  Segment(std::string path, int64_t start, uint64_t size, std::unique_ptr<RandomAccessFile> reader,
          std::shared_ptr<WritableFile> writer);

  // The write handle, or FAILED_PRECONDITION on a sealed segment.
  absl::StatusOr<std::shared_ptr<WritableFile>> Writer() const;

  const std::string path_;
  const int64_t start_;
  std::atomic<int64_t> end_;
  const std::unique_ptr<RandomAccessFile> reader_;
  mutable absl::Mutex mu_;
  std::shared_ptr<WritableFile> writer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
