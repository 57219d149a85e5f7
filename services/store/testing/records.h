// Test helpers shared by the store's unit tests: records to append and a
// reader for files on disk.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "services/store/commitlog/commit_log.h"
#include "services/store/commitlog/record.h"

namespace apogee::store::testing {

// A record for `topic`/`queue` with message id "id-<n>" from a process-wide
// counter and body `body` (default "body-<n>").
RecordInput MakeRecord(const std::string& topic, int32_t queue_id, std::string body = "",
                       std::vector<std::string> keys = {});

// Records encoded back to back as the commit log would write them, for
// tests of the index layer without a log. Queue offsets count per queue.
class RecordBuffer {
 public:
  explicit RecordBuffer(int64_t start_offset = 0) : start_(start_offset) {}
  // Appends `input` stored at `store_timestamp_ms`; returns its position.
  RecordPosition Add(const RecordInput& input, int64_t store_timestamp_ms);
  // Views of the records added since `from` (a commit offset), in order.
  std::vector<RecordView> Views(int64_t from = -1) const;
  int64_t end() const { return start_ + static_cast<int64_t>(bytes_.size()); }
  // Drops the records from `offset` (a record's commit offset) on, as a
  // log that lost its tail; the queues' next offsets follow.
  void TruncateFrom(int64_t offset);

 private:
  int64_t start_;
  std::string bytes_;
  std::map<std::pair<std::string, int32_t>, int64_t> next_;
};

// `input` (no typed fields) at `position`, encoded as version 1 wrote
// records: magic 0xA1, no tag-length field (a tag rode in the body then).
std::string VersionOneRecord(const RecordInput& input, const RecordPosition& position);

// Options for a test commit log in <dir>/commitlog: 4 KiB segments, records
// up to 1 KiB, so a few dozen small records span several segments.
CommitLogOptions SmallLogOptions(const std::string& dir, FlushMode mode = FlushMode::kAsync);

// The whole content of a real file (not through a FileSystem).
std::string ReadFileBytes(const std::string& path);
// Overwrites bytes of a real file at `offset` (to corrupt it in tests).
void PatchFileBytes(const std::string& path, uint64_t offset, const std::string& bytes);
// Appends bytes to a real file (to fake a torn tail).
void AppendFileBytes(const std::string& path, const std::string& bytes);

}  // namespace apogee::store::testing
