// The leader-epoch history of a store (like Kafka's leader-epoch checkpoint):
// for every epoch in which this log was written, the commit-log offset of its
// first record. A follower and its master compare histories to find where
// their logs stop agreeing (docs/design/replication.md, "Divergence").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace apogee::store {

struct EpochEntry {
  int64_t epoch = 0;
  int64_t start_offset = 0;
  friend bool operator==(const EpochEntry& a, const EpochEntry& b) {
    return a.epoch == b.epoch && a.start_offset == b.start_offset;
  }
};

// Thread-safe. Entries are strictly increasing in epoch and non-decreasing in
// start offset. A history with no entries behaves as {epoch 0 from offset 0}
// (a store never told its role). Every change is written to `path` (temp
// file, fsync, rename) before it is visible.
class EpochHistory {
 public:
  // Loads `path` (an absent file is an empty history). DATA_LOSS names the
  // line of a malformed file.
  static absl::StatusOr<std::unique_ptr<EpochHistory>> Open(std::string path);

  std::vector<EpochEntry> entries() const;
  // The latest entry; {0, 0} when empty.
  EpochEntry Latest() const;

  // Starts `epoch` at `start_offset`. INVALID_ARGUMENT unless epoch is above
  // the latest and the offset not below the latest start. Appending the
  // latest entry again is a no-op.
  absl::Status Append(EpochEntry entry);

  // Where the log written in `epoch` ends given this store's `log_end`: the
  // start of the first later epoch, or log_end when `epoch` is the latest
  // (or later). For an epoch this history never had, the answer for the
  // largest epoch below it (the follower's entries past that point are not
  // ours). Returns the epoch used and that end offset.
  EpochEntry EndOf(int64_t epoch, int64_t log_end) const;

  // Replaces the whole history (a follower adopts its master's).
  absl::Status Replace(std::vector<EpochEntry> entries);

  // Drops entries that start at or after `offset` (the log was truncated
  // there), keeping at least the first.
  absl::Status TruncateFrom(int64_t offset);

 private:
  explicit EpochHistory(std::string path) : path_(std::move(path)) {}
  static absl::Status Validate(const std::vector<EpochEntry>& entries);
  absl::Status Persist(const std::vector<EpochEntry>& entries) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::vector<EpochEntry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::store
