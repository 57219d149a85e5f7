// Checks on what v2 clients send that sit beside the codec's RocketMQ rules:
// enum fields must hold a value the protocol defines (protobuf keeps unknown
// enum numbers such as message type 99 as they are), the message id rule,
// and the store's per-record limits, so every refusal carries the v2 code
// the RocketMQ proxy uses and names the field. Also turns a store refusal
// that slipped past these checks into a v2 status in the broker's words.
// Stateless; thread-safe.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "apache/rocketmq/v2/definition.pb.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

// One message of a SendMessage call; `where` names it ("messages[2]").
//   message_id: ValidateMessageId (visible ASCII, 1..128) -> ILLEGAL_MESSAGE_ID
//   message_type unknown -> BAD_REQUEST; LITE / PRIORITY -> UNSUPPORTED
//   body_encoding unknown -> BAD_REQUEST
//   more than kMaxMessageKeys keys, or a key over kMaxMessageKeyLength
//     bytes -> ILLEGAL_MESSAGE_KEY
//   tag over kMaxMessageTagLength bytes -> ILLEGAL_MESSAGE_TAG
absl::Status ValidateMessageFields(const v2::Message& message, absl::string_view where);

// FilterExpression.type must be FILTER_TYPE_UNSPECIFIED, TAG or SQL;
// anything else is ILLEGAL_FILTER_EXPRESSION.
absl::Status ValidateFilterType(const v2::FilterExpression& expression);

// Heartbeat/Settings client_type: a ClientType value (UNSPECIFIED included:
// a heartbeat may leave it out); anything else is UNRECOGNIZED_CLIENT_TYPE.
absl::Status ValidateClientType(absl::string_view field, int client_type);

// QueryOffset's policy: BEGINNING, END or TIMESTAMP; else BAD_REQUEST.
absl::Status ValidateQueryOffsetPolicy(int policy);

// The status for a message whose batch the store failed. An INVALID_ARGUMENT
// from the store (a record limit the broker did not check first) becomes
// BAD_REQUEST naming the client's message: the store's "batch[r]." prefix
// is rewritten to "messages[i]" through `record_index` (record r came from
// messages[record_index[r]]). ABORTED (a sync-replication master stored
// the batch but too few in-sync slaves acknowledged it in time) becomes
// SLAVE_PERSISTENCE_TIMEOUT naming `sync_policy` (the master's
// min_insync_replicas and replication_timeout). Other errors pass unchanged.
absl::Status FromStoreAppendError(const absl::Status& store_error,
                                  const std::vector<int>& record_index,
                                  absl::string_view sync_policy = "");

}  // namespace apogee::broker
