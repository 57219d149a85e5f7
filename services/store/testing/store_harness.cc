#include "services/store/testing/store_harness.h"

#include "services/store/io/posix_file_system.h"
#include "services/store/testing/records.h"

namespace apogee::store::testing {

StoreHarness::StoreHarness() : fs_(PosixFileSystem::Default()) {}

StoreOptions StoreHarness::Options(FlushMode mode) {
  StoreOptions o;
  o.data_dir = dir_.path() + "/store";
  o.file_system = &fs_;
  o.clock = &clock_;
  o.segment_size = 16 << 10;
  o.max_body_size = 4 << 10;
  o.flush_mode = mode;
  o.flush_interval = absl::ZeroDuration();
  o.retention.check_interval = absl::ZeroDuration();
  return o;
}

void StoreHarness::Open(StoreOptions options) {
  store_.reset();
  auto store = Store::Create(std::move(options));
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
}

void StoreHarness::Crash() {
  ASSERT_TRUE(fs_.Crash().ok());
  store_.reset();
}

void StoreHarness::CreateTopic(const std::string& name, int32_t queues) {
  const absl::Status s = store_->PutTopic({name, queues, ""});
  ASSERT_TRUE(s.ok()) << s;
}

AppendResult StoreHarness::Append(const std::string& topic, int32_t queue, std::string body,
                                  std::vector<std::string> keys) {
  auto r = store_->Append({MakeRecord(topic, queue, std::move(body), std::move(keys))});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? (*r)[0] : AppendResult{};
}

void StoreHarness::WaitForDispatch() {
  ASSERT_TRUE(store_->WaitForDispatch(store_->GetLogOffsets().committed, absl::Seconds(10)));
}

std::vector<std::string> StoreHarness::Bodies(const std::string& topic, int32_t queue) {
  WaitForDispatch();
  std::vector<std::string> bodies;
  auto range = store_->GetQueueRange(topic, queue);
  EXPECT_TRUE(range.ok()) << range.status();
  ReadRequest request;
  request.topic = topic;
  request.queue_id = queue;
  request.offset = range.ok() ? range->min_offset : 0;
  request.max_messages = kMaxReadMessages;
  while (true) {
    auto result = store_->Read(request);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok() || result->records.empty()) return bodies;
    for (const StoredRecord& r : result->records) bodies.emplace_back(r.view().body());
    request.offset = result->next_offset;
  }
}

int64_t CopyLog(const Store& from, Store* to, size_t chunk_bytes) {
  int64_t at = to->GetLogOffsets().max;
  while (at < from.GetLogOffsets().max) {
    auto chunk = from.ReadRaw(at, chunk_bytes);
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok()) return -1;
    auto end = to->AppendReplicated(
        chunk->start, absl::string_view(*chunk->data).substr(0, chunk->end - chunk->start));
    EXPECT_TRUE(end.ok()) << end.status();
    if (!end.ok()) return -1;
    at = *end;
  }
  return at;
}

}  // namespace apogee::store::testing
