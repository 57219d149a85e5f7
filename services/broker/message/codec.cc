#include "services/broker/message/codec.h"

#include <openssl/evp.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/broker/message/validation.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;

bool HasControlChar(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_iscntrl(static_cast<unsigned char>(c)); });
}

bool IsBlank(const std::string& s) { return absl::StripAsciiWhitespace(s).empty(); }

absl::Status Bad(v2::Code code, std::string message) {
  return WithV2Code(absl::InvalidArgumentError(std::move(message)), code);
}

// The delivery-time rules of docs/design/message-types.md §5.
absl::Status CheckDelivery(const v2::Message& m, const std::string& where,
                           const MessageLimits& limits, absl::Time now) {
  const v2::SystemProperties& sp = m.system_properties();
  const bool delayed = sp.has_delivery_timestamp();
  if (sp.message_type() == v2::DELAY && !delayed) {
    return Bad(v2::ILLEGAL_DELIVERY_TIME,
               absl::StrCat(where,
                            " is a DELAY message without system_properties.delivery_"
                            "timestamp"));
  }
  if (!delayed) return absl::OkStatus();
  if (sp.has_message_group()) {
    // A FIFO message cannot be delayed: it would either hold its group back
    // until due or be delivered out of send order (RocketMQ refuses it too).
    return Bad(v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
               absl::StrCat(where,
                            " sets both message_group and delivery_timestamp: a FIFO message "
                            "cannot be delayed (send the ordered sequence later, or send to a "
                            "DELAY topic without a message_group)"));
  }
  if (sp.message_type() != v2::DELAY && sp.message_type() != v2::MESSAGE_TYPE_UNSPECIFIED) {
    return Bad(v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
               absl::StrCat(where, " is a ", v2::MessageType_Name(sp.message_type()),
                            " message with delivery_timestamp (only DELAY messages have one)"));
  }
  const absl::Time at = absl::FromUnixSeconds(sp.delivery_timestamp().seconds()) +
                        absl::Nanoseconds(sp.delivery_timestamp().nanos());
  if (at - now > limits.max_delivery_delay) {
    return Bad(
        v2::ILLEGAL_DELIVERY_TIME,
        absl::StrCat(where, " delivery_timestamp ", absl::FormatTime(at, absl::UTCTimeZone()),
                     " is ", absl::FormatDuration(at - now),
                     " ahead, beyond the broker's --max_delivery_delay=",
                     absl::FormatDuration(limits.max_delivery_delay)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMessage(const v2::Message& m, int index, const MessageLimits& limits,
                             absl::Time now) {
  const std::string where = absl::StrCat("messages[", index, "]");
  const v2::SystemProperties& sp = m.system_properties();
  APOGEE_RETURN_IF_ERROR(ValidateMessageFields(m, where));
  if (m.body().empty()) {
    return Bad(v2::MESSAGE_BODY_EMPTY, absl::StrCat(where, ".body is empty"));
  }
  if (static_cast<int64_t>(m.body().size()) > limits.max_body_bytes) {
    return WithV2Code(
        absl::InvalidArgumentError(absl::StrCat(where, ".body is ", m.body().size(), " bytes (max ",
                                                limits.max_body_bytes, ")")),
        v2::MESSAGE_BODY_TOO_LARGE);
  }
  int64_t property_bytes = 0;
  if (sp.has_tag()) {
    if (IsBlank(sp.tag()) || sp.tag().find('|') != std::string::npos || HasControlChar(sp.tag())) {
      return Bad(v2::ILLEGAL_MESSAGE_TAG,
                 absl::StrCat(where, " tag \"", sp.tag(),
                              "\" is invalid (must be non-blank, no '|', no control characters)"));
    }
    property_bytes += static_cast<int64_t>(sp.tag().size());
  }
  for (const std::string& key : sp.keys()) {
    if (IsBlank(key) || HasControlChar(key)) {
      return Bad(v2::ILLEGAL_MESSAGE_KEY,
                 absl::StrCat(where, " key \"", key,
                              "\" is invalid (must be non-blank, no control characters)"));
    }
    property_bytes += static_cast<int64_t>(key.size());
  }
  if (sp.has_message_group()) {
    const std::string& group = sp.message_group();
    if (IsBlank(group) || HasControlChar(group) ||
        static_cast<int>(group.size()) >= limits.max_message_group_bytes) {
      return Bad(v2::ILLEGAL_MESSAGE_GROUP,
                 absl::StrCat(where, " message_group \"", group.substr(0, 80),
                              "\" is invalid (non-blank, no control characters, under ",
                              limits.max_message_group_bytes, " bytes)"));
    }
  }
  if (m.user_properties_size() > limits.max_user_properties) {
    return WithV2Code(absl::InvalidArgumentError(
                          absl::StrCat(where, " has ", m.user_properties_size(),
                                       " user properties (max ", limits.max_user_properties, ")")),
                      v2::MESSAGE_PROPERTIES_TOO_LARGE);
  }
  for (const auto& [key, value] : m.user_properties()) {
    if (IsBlank(key) || HasControlChar(key) || IsReservedPropertyKey(key)) {
      return Bad(v2::ILLEGAL_MESSAGE_PROPERTY_KEY,
                 absl::StrCat(where, " user property key \"", key,
                              "\" is reserved or invalid (RocketMQ system keys are reserved)"));
    }
    property_bytes += static_cast<int64_t>(key.size() + value.size());
  }
  if (property_bytes > limits.max_properties_bytes) {
    return WithV2Code(absl::InvalidArgumentError(
                          absl::StrCat(where, " properties, tag and keys take ", property_bytes,
                                       " bytes (max ", limits.max_properties_bytes, ")")),
                      v2::MESSAGE_PROPERTIES_TOO_LARGE);
  }
  APOGEE_RETURN_IF_ERROR(CheckDelivery(m, where, limits, now));
  if (sp.message_type() == v2::TRANSACTION && sp.has_message_group()) {
    // A commit appends in commit order, not send order (RocketMQ 5 refuses it too).
    return Bad(v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
               absl::StrCat(where,
                            " is a TRANSACTION message with message_group: a transactional "
                            "message cannot be FIFO"));
  }
  return absl::OkStatus();
}

v2::MessageType MessageTypeOf(const v2::SystemProperties& sp) {
  if (sp.message_type() != v2::MESSAGE_TYPE_UNSPECIFIED) return sp.message_type();
  if (sp.has_delivery_timestamp()) return v2::DELAY;
  return sp.has_message_group() ? v2::FIFO : v2::NORMAL;
}

nsv1::TopicMessageType TopicTypeFor(v2::MessageType type) {
  switch (type) {
    case v2::FIFO:
      return nsv1::TOPIC_MESSAGE_TYPE_FIFO;
    case v2::DELAY:
      return nsv1::TOPIC_MESSAGE_TYPE_DELAY;
    case v2::TRANSACTION:
      return nsv1::TOPIC_MESSAGE_TYPE_TRANSACTION;
    default:
      return nsv1::TOPIC_MESSAGE_TYPE_NORMAL;
  }
}

absl::Status CheckMessageType(const v2::Message& m, const nsv1::TopicConfig& topic) {
  v2::MessageType want;
  switch (topic.message_type()) {
    case nsv1::TOPIC_MESSAGE_TYPE_NORMAL:
      want = v2::NORMAL;
      break;
    case nsv1::TOPIC_MESSAGE_TYPE_FIFO:
      want = v2::FIFO;
      break;
    case nsv1::TOPIC_MESSAGE_TYPE_DELAY:
      want = v2::DELAY;
      break;
    case nsv1::TOPIC_MESSAGE_TYPE_TRANSACTION:
      want = v2::TRANSACTION;
      break;
    default:
      return absl::OkStatus();  // untyped and mixed topics take every type
  }
  const v2::MessageType got = MessageTypeOf(m.system_properties());
  if (got != want) {
    return WithV2Code(absl::InvalidArgumentError(absl::StrCat(
                          "message type ", v2::MessageType_Name(got), " does not match topic \"",
                          topic.name(), "\" of type ", v2::MessageType_Name(want))),
                      v2::MESSAGE_PROPERTY_CONFLICT_WITH_TYPE);
  }
  return absl::OkStatus();
}

namespace {

// Fields a client may send that never go to disk.
bool HasDeliveryFields(const v2::SystemProperties& sp) {
  return sp.has_receipt_handle() || sp.has_delivery_attempt() || sp.has_invisible_duration() ||
         sp.has_queue_offset() || sp.has_store_timestamp() || sp.has_body_digest();
}

v2::MessageType StoredType(const v2::SystemProperties& sp) {
  if (sp.message_type() != v2::MESSAGE_TYPE_UNSPECIFIED) return sp.message_type();
  if (sp.has_delivery_timestamp()) return v2::DELAY;
  return sp.has_message_group() ? v2::FIFO : v2::NORMAL;
}

}  // namespace

store::v1::AppendRecord ToStoreRecord(const v2::Message& message, const std::string& topic,
                                      int32_t queue_id, const std::string& store_host,
                                      const std::string& peer_host, absl::string_view encoded) {
  const v2::SystemProperties& sp = message.system_properties();
  store::v1::AppendRecord record;
  record.set_topic(topic);
  record.set_queue_id(queue_id);
  record.set_message_id(sp.message_id());
  for (const std::string& key : sp.keys()) record.add_keys(key);
  if (sp.has_tag()) record.set_tag(sp.tag());
  if (sp.has_born_timestamp()) *record.mutable_born_time() = sp.born_timestamp();
  std::string* body = record.mutable_body();
  if (HasDeliveryFields(sp) || !sp.store_host().empty()) {
    // Rare: fields to drop. Copy, clear and serialise.
    v2::Message copy = message;
    v2::SystemProperties* out = copy.mutable_system_properties();
    if (out->born_host().empty()) out->set_born_host(peer_host);
    out->set_store_host(store_host);
    out->set_message_type(StoredType(sp));
    out->clear_receipt_handle();
    out->clear_delivery_attempt();
    out->clear_invisible_duration();
    out->clear_queue_offset();
    out->clear_store_timestamp();
    out->clear_body_digest();
    copy.SerializeToString(body);
    return record;
  }
  // The client's message serialised once, as it came, followed by the
  // broker's fields: parsing merges a repeated system_properties into the
  // first one, so the stored message reads as if they had been set in it.
  // Reused per thread: cleared, it keeps its allocations for the next send.
  thread_local v2::Message added;
  added.Clear();
  v2::SystemProperties* fill = added.mutable_system_properties();
  if (sp.born_host().empty()) fill->set_born_host(peer_host);
  fill->set_store_host(store_host);
  if (sp.message_type() == v2::MESSAGE_TYPE_UNSPECIFIED) fill->set_message_type(StoredType(sp));
  if (encoded.empty()) {
    body->reserve(message.ByteSizeLong() + added.ByteSizeLong());
    message.AppendToString(body);
  } else {
    body->reserve(encoded.size() + added.ByteSizeLong());
    body->append(encoded.data(), encoded.size());
  }
  added.AppendToString(body);
  return record;
}

int ReconsumeTimes(const v2::Message& m) {
  auto it = m.user_properties().find(kPropReconsumeTimes);
  int value = 0;
  if (it != m.user_properties().end() && absl::SimpleAtoi(it->second, &value)) return value;
  return 0;
}

absl::StatusOr<v2::Message> FromStoreRecord(const store::v1::StoredRecord& record) {
  v2::Message m;
  if (!m.ParseFromString(record.body())) {
    return absl::DataLossError(absl::StrCat("stored message at ", record.topic(), "/",
                                            record.queue_id(), "@", record.queue_offset(),
                                            " does not parse"));
  }
  auto* props = m.mutable_user_properties();
  v2::SystemProperties* sp = m.mutable_system_properties();
  sp->set_delivery_attempt(ReconsumeTimes(m) + 1);
  auto retry = props->find(kPropRetryTopic);
  if (retry != props->end()) {
    m.mutable_topic()->set_name(retry->second);  // consumers see the original topic
  } else {
    m.mutable_topic()->set_name(record.topic());
  }
  auto origin_topic = props->find(kPropDlqOriginTopic);
  auto origin_id = props->find(kPropDlqOriginMessageId);
  if (origin_topic != props->end() && origin_id != props->end()) {
    sp->mutable_dead_letter_queue()->set_topic(origin_topic->second);
    sp->mutable_dead_letter_queue()->set_message_id(origin_id->second);
    m.mutable_topic()->set_name(record.topic());
  }
  for (const char* key :
       {kPropReconsumeTimes, kPropRetryTopic, kPropDlqOriginTopic, kPropDlqOriginMessageId}) {
    props->erase(key);
  }
  *sp->mutable_store_timestamp() = record.store_time();
  sp->set_queue_id(record.queue_id());
  sp->set_queue_offset(record.queue_offset());
  if (sp->body_encoding() == v2::ENCODING_UNSPECIFIED) sp->set_body_encoding(v2::IDENTITY);
  return m;
}

admin::v1::MessageView ToMessageView(v2::Message message) {
  admin::v1::MessageView view;
  v2::SystemProperties* sp = message.mutable_system_properties();
  view.set_topic(message.topic().name());
  view.set_queue_id(sp->queue_id());
  view.set_queue_offset(sp->queue_offset());
  view.set_message_id(sp->message_id());
  view.set_tag(sp->tag());
  for (std::string& key : *sp->mutable_keys()) view.add_keys(std::move(key));
  view.mutable_properties()->swap(*message.mutable_user_properties());
  view.set_body(std::move(*message.mutable_body()));
  *view.mutable_born_time() = sp->born_timestamp();
  *view.mutable_store_time() = sp->store_timestamp();
  view.set_born_host(sp->born_host());
  return view;
}

std::string Md5Hex(const std::string& data) {
  // Fetched once: OpenSSL 3 looks the algorithm up on every call otherwise.
  static const EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, md5, nullptr);
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

void SetBodyDigest(v2::Message* message) {
  v2::Digest* digest = message->mutable_system_properties()->mutable_body_digest();
  digest->set_type(v2::MD5);
  digest->set_checksum(Md5Hex(message->body()));
}

}  // namespace apogee::broker
