// Operators' message queries (admin GetMessage / FindMessages): by id, by key,
// or by store-time range, answered as MessageViews decoded with the broker's
// one record codec (message/codec).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apogee/admin/v1/admin.pb.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"

namespace apogee::broker {

// FindMessages limits: max_messages 1..kMaxFindMessages, 0 means the default.
inline constexpr int kDefaultFindMessages = 32;
inline constexpr int kMaxFindMessages = 1000;

// A stored record as operators see it: the codec's ToMessageView of the
// decoded message (tag, keys, user properties, body, born host) plus the
// stored topic and positions. DATA_LOSS when the body does not decode.
absl::StatusOr<admin::v1::MessageView> StoredMessageView(const sv1::StoredRecord& record);

// Thread-safe (no state of its own). Calls the store: run on worker threads.
class MessageQuery {
 public:
  MessageQuery(StoreClient* store, TopicManager* topics) : store_(store), topics_(topics) {}

  // Every stored message with `message_id` (only in `topic` when set).
  // NOT_FOUND naming the id (and topic) when there is none.
  absl::StatusOr<admin::v1::GetMessageResponse> Get(const admin::v1::GetMessageRequest& request);

  // By key when `key` is set, else every message stored in [from, to) (to
  // unset: `now`), oldest first, at most max_messages. INVALID_ARGUMENT for a
  // bad limit or range, NOT_FOUND for an unknown topic.
  absl::StatusOr<admin::v1::FindMessagesResponse> Find(
      const admin::v1::FindMessagesRequest& request, absl::Time now);

 private:
  // Messages of one queue stored in [from, to), at most `limit`.
  absl::Status ReadRange(const std::string& topic, int32_t queue, absl::Time from, absl::Time to,
                         int limit, std::vector<sv1::StoredRecord>* out);

  StoreClient* const store_;
  TopicManager* const topics_;
};

}  // namespace apogee::broker
