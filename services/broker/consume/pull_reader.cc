#include "services/broker/consume/pull_reader.h"

#include <utility>

#include "services/broker/message/codec.h"
#include "services/common/status/status_macros.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {

namespace {
// A pull read's byte budget: large batches of small messages in one read,
// far below what one response may carry.
constexpr int64_t kMaxReadBytes = 16 * 1024 * 1024;
}  // namespace

Pulled SelectPulled(const store::v1::ReadResponse& response, int64_t offset, int batch,
                    const MessageFilter& filter) {
  Pulled out;
  out.at_end = response.records_size() == 0 && response.next_offset() == offset;
  out.next_offset = response.next_offset();
  for (const store::v1::StoredRecord& record : response.records()) {
    if (static_cast<int>(out.messages.size()) == batch) {  // read ahead: resume here
      out.next_offset = record.queue_offset();
      break;
    }
    out.last_commit_log_offset = record.commit_log_offset();
    auto m = FromStoreRecord(record);
    if (m.ok() && filter.Matches(*m)) out.messages.push_back(std::move(m).value());
  }
  return out;
}

absl::StatusOr<Pulled> PullReader::Read(const std::string& topic, int32_t queue, int64_t offset,
                                        int batch, const MessageFilter& filter) {
  store::v1::ReadRequest read;
  read.set_topic(topic);
  read.set_queue_id(queue);
  read.set_offset(offset);
  read.set_max_messages(filter.RecordsToRead(batch));
  read.set_max_bytes(kMaxReadBytes);
  filter.NarrowRead(&read);
  auto response = store_->Read(read);
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kOutOfRange) {
      return WithV2Code(response.status(), v2::ILLEGAL_OFFSET);
    }
    return response.status();
  }
  return SelectPulled(*response, offset, batch, filter);
}

absl::Status PullReader::Commit(const std::string& group, const std::string& topic, int32_t queue,
                                int64_t offset) {
  return store_->CommitOffset(group, topic, queue, offset);
}

absl::StatusOr<int64_t> PullReader::Committed(const std::string& group, const std::string& topic,
                                              int32_t queue) {
  auto offset = store_->FetchOffset(group, topic, queue);
  if (!offset.ok() && offset.status().code() == absl::StatusCode::kNotFound) {
    return WithV2Code(offset.status(), v2::OFFSET_NOT_FOUND);
  }
  return offset;
}

absl::StatusOr<int64_t> PullReader::OffsetAt(const std::string& topic, int32_t queue,
                                             absl::Time time) {
  return store_->LookupOffsetByTime(topic, queue, time);
}

absl::StatusOr<int64_t> PullReader::Bound(const std::string& topic, int32_t queue, bool end) {
  APOGEE_ASSIGN_OR_RETURN(auto offsets, store_->GetQueueOffsets(topic, queue));
  return end ? offsets.max_offset() : offsets.min_offset();
}

}  // namespace apogee::broker
