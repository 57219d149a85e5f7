// The store's record decoder on arbitrary bytes: RecordView::Parse as the
// commit log's recovery, reads and replication (AppendRaw) run it. Input:
// byte 0 picks the offset the record must carry (0 or the stored one), the
// rest is the record. A record that parses must describe itself
// consistently and re-encode to the same bytes.
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "services/store/commitlog/record.h"

namespace apogee::store {
namespace {

using fuzz::Fail;

constexpr uint32_t kMaxLength = (4u << 20) + (64u << 10);  // CommitLogOptions' default

void Run(uint8_t mode, absl::string_view data) {
  // Mode 1: expect the offset the record itself stores (bytes 24..31,
  // little-endian), so the checks after the offset's are reached.
  int64_t expected = 0;
  if ((mode & 1) != 0 && data.size() >= 32) {
    for (int i = 7; i >= 0; --i) {
      expected = static_cast<int64_t>((static_cast<uint64_t>(expected) << 8) |
                                      static_cast<uint8_t>(data[24 + static_cast<size_t>(i)]));
    }
  }
  if (data.size() >= 4) (void)RecordView::PeekLength(data);
  auto view = RecordView::Parse(data, expected, kMaxLength);
  fuzz::Answer(view.status());
  if (!view.ok()) return;
  if (view->length() > data.size() || view->commit_offset() != expected) {
    Fail("a parsed record claims bytes or an offset it does not have");
  }
  RecordInput input;
  input.topic = std::string(view->topic());
  input.queue_id = view->queue_id();
  input.message_id = std::string(view->message_id());
  for (absl::string_view key : view->keys()) input.keys.emplace_back(key);
  input.tag = std::string(view->tag());
  input.tags_hash = view->tags_hash();
  input.born_timestamp_ms = view->born_timestamp_ms();
  input.flags = view->flags();
  input.body = std::string(view->body());
  // Only version 2 is written; a record the append path would refuse
  // (e.g. a negative queue id a crafted CRC covers) has no encoding to match.
  if (view->version() != 2 || !ValidateRecordInput(input).ok()) return;
  RecordPosition position;
  position.commit_offset = view->commit_offset();
  position.queue_offset = view->queue_offset();
  position.store_timestamp_ms = view->store_timestamp_ms();
  position.batch_continues = view->batch_continues();
  std::string again;
  EncodeRecord(input, position, &again);
  if (again != view->raw()) {
    Fail(absl::StrCat("a parsed record does not re-encode to its own bytes (", again.size(), " vs ",
                      view->raw().size(), ")"));
  }
}

}  // namespace
}  // namespace apogee::store

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  apogee::store::Run(data[0], absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  return 0;
}
