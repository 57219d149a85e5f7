#include "sdk/cpp/src/convert.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/wire/wire_out.h"

namespace apogee::sdk {
namespace {

bool Blank(const std::string& s) { return absl::StripAsciiWhitespace(s).empty(); }

// Reading a stored v2::Message straight into a ReceivedMessage: parsing it
// into a v2::Message first, then moving its fields over, was a quarter of
// a push consumer's CPU in a backlog drain (docs/benchmarks.md, "Push
// frames, send requests and stored messages in wire format"). Field numbers are v2's
// (definition.proto); CodedInputStream keeps every read in bounds. What the
// generated parser does is kept: a field set twice keeps the last value, a
// message field set twice is merged, a map key set twice keeps the last
// value, unknown fields (and known numbers with another wire type) are
// skipped. Unlike it, strings are not checked for UTF-8 (the broker checked
// them when the message was sent).
using ::google::protobuf::internal::WireFormatLite;
using ::google::protobuf::io::CodedInputStream;

constexpr uint32_t kLengthDelimited = 2;

// Reads the fields of one length-delimited field's message with
// `field(number, in)`, which reads a field it knows and returns false on a
// malformed one, or returns nullopt for one it does not know (skipped).
template <typename Field>
bool ReadMessage(CodedInputStream& in, const Field& field) {
  uint32_t length = 0;
  if (!in.ReadVarint32(&length)) return false;
  const CodedInputStream::Limit limit = in.PushLimit(static_cast<int>(length));
  if (static_cast<uint32_t>(in.BytesUntilLimit()) != length) return false;  // truncated
  while (const uint32_t tag = in.ReadTag()) {
    const std::optional<bool> read = field(tag, in);
    if (read.has_value() ? !*read : !WireFormatLite::SkipField(&in, tag)) return false;
  }
  if (!in.ConsumedEntireMessage()) return false;
  in.PopLimit(limit);
  return true;
}

bool ReadString(CodedInputStream& in, std::string* out) {
  uint32_t length = 0;
  return in.ReadVarint32(&length) && in.ReadString(out, static_cast<int>(length));
}

// The tag of field `number` when length-delimited.
constexpr uint32_t Delimited(int number) {
  return (static_cast<uint32_t>(number) << 3) | kLengthDelimited;
}

bool ReadTimestamp(CodedInputStream& in, google::protobuf::Timestamp* t) {
  return ReadMessage(in, [t](uint32_t tag, CodedInputStream& ts) -> std::optional<bool> {
    uint64_t value = 0;
    if (tag == (1u << 3)) {  // seconds, a varint
      if (!ts.ReadVarint64(&value)) return false;
      t->set_seconds(static_cast<int64_t>(value));
      return true;
    }
    if (tag == (2u << 3)) {  // nanos
      if (!ts.ReadVarint64(&value)) return false;
      t->set_nanos(static_cast<int32_t>(value));
      return true;
    }
    return std::nullopt;
  });
}

bool ReadStoredMessage(absl::string_view bytes, ReceivedMessage* out) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  google::protobuf::Timestamp born;
  google::protobuf::Timestamp deliver;
  bool delayed = false;
  auto system = [&](uint32_t tag, CodedInputStream& sp) -> std::optional<bool> {
    switch (tag) {
      case Delimited(1):
        return ReadString(sp, &out->tag);
      case Delimited(2):
        return ReadString(sp, &out->keys.emplace_back());
      case Delimited(3):
        return ReadString(sp, &out->message_id);
      case Delimited(7):
        return ReadTimestamp(sp, &born);
      case Delimited(11):
        delayed = true;
        return ReadTimestamp(sp, &deliver);
      case Delimited(17):
        return ReadString(sp, &out->message_group);
      default:
        return std::nullopt;  // the broker's fields come from beside the message
    }
  };
  while (const uint32_t tag = in.ReadTag()) {
    bool read = true;
    switch (tag) {
      case Delimited(2): {  // a user_properties entry
        std::string key;
        std::string value;
        read = ReadMessage(in, [&](uint32_t t, CodedInputStream& e) -> std::optional<bool> {
          if (t == Delimited(1)) return ReadString(e, &key);
          if (t == Delimited(2)) return ReadString(e, &value);
          return std::nullopt;
        });
        out->properties[std::move(key)] = std::move(value);
        break;
      }
      case Delimited(3):
        read = ReadMessage(in, system);
        break;
      case Delimited(4):
        read = ReadString(in, &out->body);
        break;
      default:  // the topic (the broker's wins) and unknown fields
        read = WireFormatLite::SkipField(&in, tag);
    }
    if (!read) return false;
  }
  if (!in.ConsumedEntireMessage()) return false;
  out->born_time = FromProtoTimestamp(born);
  if (delayed) out->delivery_time = FromProtoTimestamp(deliver);
  return true;
}

}  // namespace

absl::Status ValidateMessage(const Message& m, const std::string& where) {
  if (absl::Status s = ValidateClientTopic(absl::StrCat(where, ".topic"), m.topic); !s.ok())
    return s;
  if (m.delay_level != 0 && (m.delay_level < 1 || m.delay_level > kMaxDelayLevel)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".delay_level ", m.delay_level,
                                                   " is out of range [1, ", kMaxDelayLevel, "]"));
  }
  if (m.delay_level != 0 && m.delivery_time != absl::InfinitePast()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " sets both delay_level and delivery_time (choose one)"));
  }
  if (!m.message_group.empty() && Blank(m.message_group)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".message_group is blank"));
  }
  if (!m.message_group.empty() && (m.delay_level != 0 || m.delivery_time != absl::InfinitePast())) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " sets message_group and a delay (a FIFO message cannot be delayed)"));
  }
  if (m.body.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ".body is empty"));
  if (m.body.size() > kMaxBodyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".body is ", m.body.size(), " bytes (max ", kMaxBodyBytes, ")"));
  }
  if (!m.tag.empty() && (Blank(m.tag) || m.tag.find('|') != std::string::npos)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".tag \"", m.tag, "\" is invalid (must be non-blank, no '|')"));
  }
  size_t property_bytes = m.tag.size();
  for (const std::string& key : m.keys) {
    if (Blank(key)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".keys has a blank key"));
    }
    property_bytes += key.size();
  }
  if (m.properties.size() > kMaxUserProperties) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".properties has ", m.properties.size(),
                                                   " entries (max ", kMaxUserProperties, ")"));
  }
  for (const auto& [key, value] : m.properties) {
    property_bytes += key.size() + value.size();
    if (Blank(key) || IsReservedPropertyKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".properties key \"", key,
                       "\" is reserved or blank (RocketMQ system keys such as KEYS, TAGS, "
                       "UNIQ_KEY are reserved)"));
    }
  }
  if (property_bytes > kMaxPropertiesBytes) {
    return absl::InvalidArgumentError(absl::StrCat(where, " tag, keys and properties take ",
                                                   property_bytes, " bytes (max ",
                                                   kMaxPropertiesBytes, ")"));
  }
  return absl::OkStatus();
}

namespace {

// Writes `value`'s low `digits` hex digits (upper case) ending just before `end`.
void PutHex(uint64_t value, int digits, char* end) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int i = 0; i < digits; ++i, value >>= 4) *--end = kHex[value & 0xF];
}

}  // namespace

std::string NewMessageId() {
  // 16 random bits per process, then time and a counter: unique without
  // coordination, and sortable by time within a process. The time is when
  // the counter's current block of 256 began, so that ids issued together
  // differ only in their last two digits: the store indexes such ids as one
  // run (services/store/index/README.md). Written by hand: on the async
  // send path absl::StrFormat cost ~4 % of the client's CPU.
  static const uint32_t process = [] {
    absl::BitGen gen;
    return (static_cast<uint32_t>(getpid()) << 16) ^ absl::Uniform<uint32_t>(gen);
  }();
  static std::atomic<uint32_t> counter{0};
  static std::atomic<uint64_t> block_micros{0};
  const uint32_t n = counter.fetch_add(1, std::memory_order_relaxed);
  uint64_t micros = block_micros.load(std::memory_order_relaxed);
  if ((n & 0xFF) == 0 || micros == 0) {
    // A thread that reads the previous block's time meanwhile still makes a
    // unique id: its counter value is its own.
    micros = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
    block_micros.store(micros, std::memory_order_relaxed);
  }
  std::string id(32, '0');  // "01" + 8 (process) + 14 (time) + 8 (counter)
  id[1] = '1';
  PutHex(process, 8, &id[10]);
  PutHex(micros, 14, &id[24]);
  PutHex(n, 8, id.data() + 32);
  return id;
}

grpc::Slice EncodeSendEntry(const Message& m, const std::string& message_id, absl::Time born) {
  const bool delayed = m.delay_level != 0 || m.delivery_time != absl::InfinitePast();
  v2::MessageType type = v2::NORMAL;
  if (!m.message_group.empty()) type = v2::FIFO;
  if (delayed) type = v2::DELAY;
  const google::protobuf::Timestamp born_at = ToProtoTimestamp(born);
  google::protobuf::Timestamp deliver_at;
  if (delayed) {
    deliver_at = ToProtoTimestamp(m.delay_level != 0 ? born + DelayLevelDuration(m.delay_level)
                                                     : m.delivery_time);
  }
  // v2::SystemProperties, in field-number order; tag and message_group are
  // optional fields, set only when not empty.
  auto put_system = [&](WireOut& o) {
    o.Bytes(1, m.tag);
    for (const std::string& key : m.keys) o.Bytes(2, key, /*always=*/true);
    o.Bytes(3, message_id);
    o.Int(5, v2::IDENTITY);
    o.Int(6, type);
    o.Timestamp(7, born_at.seconds(), born_at.nanos());
    if (delayed) o.Timestamp(11, deliver_at.seconds(), deliver_at.nanos());
    o.Bytes(17, m.message_group);
  };
  auto put_message = [&](WireOut& o) {
    o.Message(1, [&m](WireOut& topic) { topic.Bytes(2, m.topic); });  // Resource.name
    for (const auto& property : m.properties) {
      o.Message(2, [&property](WireOut& entry) {  // a map entry: key and value always
        entry.Bytes(1, property.first, /*always=*/true);
        entry.Bytes(2, property.second, /*always=*/true);
      });
    }
    o.Message(3, put_system);
    o.Bytes(4, m.body);
  };
  return EncodeSlice([&put_message](WireOut& out) { out.Message(1, put_message); });
}

ReceivedMessage FromV2(v2::Message m, const std::string& broker, const std::string& endpoint) {
  ReceivedMessage out;
  v2::SystemProperties& sp = *m.mutable_system_properties();
  out.topic = std::move(*m.mutable_topic()->mutable_name());
  out.message_id = std::move(*sp.mutable_message_id());
  out.tag = std::move(*sp.mutable_tag());
  out.keys.reserve(static_cast<size_t>(sp.keys_size()));
  for (std::string& key : *sp.mutable_keys()) out.keys.push_back(std::move(key));
  for (auto& [key, value] : *m.mutable_user_properties()) {
    out.properties.emplace(key, std::move(value));
  }
  out.body = std::move(*m.mutable_body());
  out.broker = broker;
  out.queue_id = sp.queue_id();
  out.offset = sp.queue_offset();
  out.born_time = FromProtoTimestamp(sp.born_timestamp());
  if (sp.has_delivery_timestamp()) out.delivery_time = FromProtoTimestamp(sp.delivery_timestamp());
  out.store_time = FromProtoTimestamp(sp.store_timestamp());
  out.delivery_attempt = sp.has_delivery_attempt() ? sp.delivery_attempt() : 1;
  out.receipt_handle = std::move(*sp.mutable_receipt_handle());
  out.message_group = std::move(*sp.mutable_message_group());
  out.endpoint = endpoint;
  return out;
}

absl::StatusOr<ReceivedMessage> FromPushed(const ::apogee::broker::v1::PushedMessage& pushed,
                                           const std::string& broker, const std::string& endpoint) {
  if (!pushed.has_message()) {
    // The stored form: the v2 message as the producer sent it, with the
    // broker's fields beside it (they win over the message's own).
    ReceivedMessage out;
    if (!ReadStoredMessage(pushed.stored_message(), &out)) {
      return absl::DataLossError(absl::StrCat("pushed message ", pushed.topic(), "/",
                                              pushed.queue_id(), "@", pushed.queue_offset(),
                                              " does not parse"));
    }
    out.topic = pushed.topic();
    out.broker = broker;
    out.queue_id = pushed.queue_id();
    out.offset = pushed.queue_offset();
    out.store_time = FromProtoTimestamp(pushed.store_time());
    out.delivery_attempt = pushed.delivery_attempt();
    out.receipt_handle = pushed.receipt_handle();
    out.endpoint = endpoint;
    return out;
  }
  const ::apogee::admin::v1::MessageView& m = pushed.message();
  ReceivedMessage out;
  out.topic = m.topic();
  out.message_id = m.message_id();
  out.tag = m.tag();
  out.keys.assign(m.keys().begin(), m.keys().end());
  out.properties.insert(m.properties().begin(), m.properties().end());
  out.body = m.body();
  out.broker = broker;
  out.queue_id = m.queue_id();
  out.offset = m.queue_offset();
  out.born_time = FromProtoTimestamp(m.born_time());
  out.store_time = FromProtoTimestamp(m.store_time());
  out.delivery_attempt = pushed.delivery_attempt();
  out.receipt_handle = pushed.receipt_handle();
  out.message_group = pushed.message_group();
  if (pushed.has_delivery_time()) out.delivery_time = FromProtoTimestamp(pushed.delivery_time());
  out.endpoint = endpoint;
  return out;
}

v2::FilterExpression ToV2Filter(const FilterExpression& filter) {
  v2::FilterExpression out;
  if (filter.type == FilterExpression::Type::kSql) {
    out.set_type(v2::SQL);
    out.set_expression(filter.expression);  // empty stays empty: the broker refuses it
  } else {
    out.set_type(v2::TAG);
    out.set_expression(filter.expression.empty() ? "*" : filter.expression);
  }
  return out;
}

}  // namespace apogee::sdk

namespace apogee {

absl::Duration DelayLevelDuration(int level) {
  // RocketMQ's messageDelayLevel: 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h.
  static constexpr int kSeconds[kMaxDelayLevel] = {1,   5,   10,  30,  60,  120,  180,  240,  300,
                                                   360, 420, 480, 540, 600, 1200, 1800, 3600, 7200};
  return absl::Seconds(kSeconds[std::clamp(level, 1, kMaxDelayLevel) - 1]);
}

}  // namespace apogee
