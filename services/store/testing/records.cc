#include "services/store/testing/records.h"

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "services/store/commitlog/crc32c.h"

namespace apogee::store::testing {

RecordInput MakeRecord(const std::string& topic, int32_t queue_id, std::string body,
                       std::vector<std::string> keys) {
  static std::atomic<int> counter{0};
  const int n = counter.fetch_add(1);
  if (body.empty()) body = absl::StrCat("body-", n);
  RecordInput r;
  r.topic = topic;
  r.queue_id = queue_id;
  r.message_id = absl::StrCat("id-", n);
  r.keys = std::move(keys);
  r.tags_hash = std::hash<std::string>()(body);
  r.born_timestamp_ms = 1'700'000'000'000;
  r.flags = 7;
  r.body = std::move(body);
  return r;
}

RecordPosition RecordBuffer::Add(const RecordInput& input, int64_t store_timestamp_ms) {
  const RecordPosition position{end(), next_[{input.topic, input.queue_id}]++, store_timestamp_ms};
  EncodeRecord(input, position, &bytes_);
  return position;
}

void RecordBuffer::TruncateFrom(int64_t offset) {
  bytes_.resize(static_cast<size_t>(offset - start_));
  next_.clear();
  for (const RecordView& r : Views()) {
    next_[{std::string(r.topic()), r.queue_id()}] = r.queue_offset() + 1;
  }
}

std::vector<RecordView> RecordBuffer::Views(int64_t from) const {
  std::vector<RecordView> out;
  int64_t offset = start_;
  while (offset < end()) {
    auto view =
        RecordView::Parse(absl::string_view(bytes_).substr(offset - start_), offset, 1u << 30);
    if (!view.ok()) std::abort();
    if (offset >= from) out.push_back(*view);
    offset = view->end_offset();
  }
  return out;
}

std::string VersionOneRecord(const RecordInput& input, const RecordPosition& position) {
  std::string v2;
  EncodeRecord(input, position, &v2);
  // Version 2 less its tag-length field, then the length and CRC again.
  std::string v1 = v2.substr(0, kRecordHeaderSizeV1) + v2.substr(kRecordHeaderSize);
  v1[8] = static_cast<char>(kRecordMagicV1);
  const auto length = static_cast<uint32_t>(v1.size());
  for (int i = 0; i < 4; ++i) v1[i] = static_cast<char>(length >> (8 * i));
  const uint32_t crc =
      crc32c::Mask(crc32c::Extend(crc32c::Extend(0, v1.data(), 4), v1.data() + 8, v1.size() - 8));
  for (int i = 0; i < 4; ++i) v1[4 + i] = static_cast<char>(crc >> (8 * i));
  return v1;
}

CommitLogOptions SmallLogOptions(const std::string& dir, FlushMode mode) {
  CommitLogOptions o;
  o.dir = dir + "/commitlog";
  o.segment_size = 4096;
  o.max_record_size = 1024;
  o.flush_mode = mode;
  return o;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void PatchFileBytes(const std::string& path, uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void AppendFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::app);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace apogee::store::testing
