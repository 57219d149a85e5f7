// A FileSystem for tests that wraps a real one and misbehaves on request:
// failing operations (fsync errors, EIO), short writes, a disk that fills up
// (ENOSPC), and a simulated crash that drops every byte not covered by a
// successful Sync.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/store/io/file_system.h"

namespace apogee::store {

enum class FaultOp { kOpen, kAppend, kSync, kTruncate, kRead, kDelete, kSyncDir };

// One injected failure. The first `skip` matching operations pass, the next
// `times` (-1: all) fail with `error`.
struct FaultRule {
  FaultOp op = FaultOp::kAppend;
  std::string path_contains;  // empty: any path
  int skip = 0;
  int times = 1;
  absl::Status error = absl::ErrnoToStatus(EIO, "injected fault");
  // kAppend only: how many bytes reach the file before the error (a short
  // write); the rest of the data is dropped.
  uint64_t short_write_bytes = 0;
  // Runs when the rule fires, outside the file system's lock, before the
  // error is returned; with an OK `error` the operation then proceeds. Lets a
  // test hold an operation (say, the group leader's fsync) at a known point.
  std::function<void()> hook;
};

// Shorthands: a failing operation, and a short append.
FaultRule Fault(FaultOp op, std::string path_contains = "", int skip = 0, int times = 1);
FaultRule ShortWrite(uint64_t bytes_written, std::string path_contains = "", int skip = 0);

// Thread-safe. Every operation holds one mutex around the wrapped call, so
// tests see a simple, serial disk. Crash model: a file keeps the bytes its
// last successful Sync covered; a file created since the last SyncDir of its
// directory disappears; deletions are durable at once; handles opened before
// Crash() fail afterwards. Only files this object opened are tracked; others
// count as fully synced.
class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem* base);

  void AddFault(FaultRule rule);
  void ClearFaults();

  // Simulated disk size. Appends beyond it write what fits and fail with
  // RESOURCE_EXHAUSTED (ENOSPC); GetDiskSpace reports it. nullopt: the real
  // disk.
  void SetCapacity(std::optional<uint64_t> bytes);

  // Drops unsynced data as described above.
  absl::Status Crash();

  // Bytes in tracked files, and how many faults fired.
  uint64_t used_bytes() const;
  int faults_fired() const;
  int syncs() const;

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status CreateDirs(const std::string& path) override;
  absl::Status SyncDir(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::StatusOr<bool> Exists(const std::string& path) override;
  absl::StatusOr<DiskSpace> GetDiskSpace(const std::string& path) override;

 private:
  class Writable;
  class Readable;
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
    bool entry_durable = true;
  };
  struct ActiveRule {
    FaultRule rule;
    int seen = 0;
    int fired = 0;
  };

  // The error injected into this operation (OK: none), after running the
  // firing rule's hook. `short_write` receives the rule's short_write_bytes.
  absl::Status Fire(FaultOp op, const std::string& path, uint64_t* short_write = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckHandleLocked(uint64_t generation, const std::string& path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FileState& TrackLocked(const std::string& path, bool created) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t UsedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status HandleAppend(uint64_t generation, WritableFile* base, absl::string_view data);
  absl::Status HandleSync(uint64_t generation, WritableFile* base);
  absl::Status HandleTruncate(uint64_t generation, WritableFile* base, uint64_t size);
  absl::StatusOr<absl::string_view> HandleRead(uint64_t generation, const RandomAccessFile* base,
                                               uint64_t offset, size_t n, char* scratch);

  FileSystem* const base_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, FileState> files_ ABSL_GUARDED_BY(mu_);
  std::vector<ActiveRule> rules_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> capacity_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int faults_fired_ ABSL_GUARDED_BY(mu_) = 0;
  int syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee::store
