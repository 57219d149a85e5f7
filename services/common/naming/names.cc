#include "services/common/naming/names.h"

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace apogee {
namespace {

// Shows a character readably in an error message.
std::string Printable(char c) {
  if (absl::ascii_isprint(static_cast<unsigned char>(c))) return std::string(1, c);
  return absl::StrFormat("\\x%02x", static_cast<unsigned char>(c));
}

template <typename Allowed>
absl::Status ValidateChars(absl::string_view kind, absl::string_view field, absl::string_view name,
                           size_t max_len, absl::string_view rule, Allowed allowed) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is empty (", kind, " names: ", rule, ", 1..", max_len, " chars)"));
  }
  if (name.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", absl::CHexEscape(name.substr(0, 32)), "...\" is ", name.size(),
                     " chars long (max ", max_len, ")"));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!allowed(name[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " \"", absl::CHexEscape(name), "\" has invalid character '", Printable(name[i]),
          "' at ", i, " (allowed: ", rule, ", max ", max_len, ")"));
    }
  }
  return absl::OkStatus();
}

bool IsTopicChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '%' || c == '|' || c == '_' ||
         c == '-';
}

bool IsNodeChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

bool IsVisibleAscii(char c) { return c >= '!' && c <= '~'; }

bool IsIpv4(absl::string_view host) {
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4) return false;
  for (absl::string_view p : parts) {
    if (p.empty() || p.size() > 3) return false;
    for (char c : p) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
    int v = 0;
    if (!absl::SimpleAtoi(p, &v) || v > 255) return false;
  }
  return true;
}

// RFC 1123 host name: dot-separated labels of [a-zA-Z0-9-], each 1..63
// chars, not starting or ending with '-', 253 chars in all.
bool IsDnsName(absl::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return false;
      }
    }
  }
  return true;
}

// RocketMQ's MessageConst.STRING_HASH_SET: user properties may not use these.
const std::set<std::string, std::less<>>& ReservedKeys() {
  static const auto* keys = new std::set<std::string, std::less<>>{"TRACE_ON",
                                                                   "MSG_REGION",
                                                                   "KEYS",
                                                                   "TAGS",
                                                                   "WAIT",
                                                                   "DELAY",
                                                                   "RETRY_TOPIC",
                                                                   "REAL_TOPIC",
                                                                   "REAL_QID",
                                                                   "TRAN_MSG",
                                                                   "PGROUP",
                                                                   "MIN_OFFSET",
                                                                   "MAX_OFFSET",
                                                                   "BUYER_ID",
                                                                   "ORIGIN_MESSAGE_ID",
                                                                   "TRANSFER_FLAG",
                                                                   "CORRECTION_FLAG",
                                                                   "RECONSUME_TIME",
                                                                   "UNIQ_KEY",
                                                                   "MAX_RECONSUME_TIMES",
                                                                   "CONSUME_START_TIME",
                                                                   "POP_CK",
                                                                   "POP_CK_OFFSET",
                                                                   "1ST_POP_TIME",
                                                                   "TRAN_PREPARED_QUEUE_OFFSET",
                                                                   "DUP_INFO",
                                                                   "EXTEND_UNIQ_INFO",
                                                                   "INSTANCE_ID",
                                                                   "CORRELATION_ID",
                                                                   "REPLY_TO_CLIENT",
                                                                   "TTL",
                                                                   "ARRIVE_TIME",
                                                                   "PUSH_REPLY_TIME",
                                                                   "CLUSTER",
                                                                   "MSG_TYPE",
                                                                   "INNER_MULTI_QUEUE_OFFSET",
                                                                   "TIMER_DELAY_MS",
                                                                   "TIMER_DELAY_SEC",
                                                                   "TIMER_DELIVER_MS",
                                                                   "TIMER_ENQUEUE_MS",
                                                                   "TIMER_DEQUEUE_MS",
                                                                   "TIMER_ROLL_TIMES",
                                                                   "TIMER_OUT_MS",
                                                                   "TIMER_DEL_UNIQKEY",
                                                                   "TIMER_DELAY_LEVEL",
                                                                   "__BORNHOST",
                                                                   "BORN_TIMESTAMP",
                                                                   "DLQ_ORIGIN_TOPIC",
                                                                   "DLQ_ORIGIN_MESSAGE_ID"};
  return *keys;
}

}  // namespace

absl::Status ValidateTopicName(absl::string_view field, absl::string_view name) {
  return ValidateChars("topic", field, name, kMaxTopicNameLength, "[%|a-zA-Z0-9_-]", IsTopicChar);
}

bool IsSystemTopic(absl::string_view topic) {
  static constexpr absl::string_view kNames[] = {"TBW102",
                                                 "SCHEDULE_TOPIC_XXXX",
                                                 "BenchmarkTest",
                                                 "RMQ_SYS_TRACE_TOPIC",
                                                 "RMQ_SYS_TRANS_HALF_TOPIC",
                                                 "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                                                 "TRANS_CHECK_MAX_TIME_TOPIC",
                                                 "SELF_TEST_TOPIC",
                                                 "OFFSET_MOVED_EVENT",
                                                 "CHECKPOINT_TOPIC"};
  if (absl::StartsWith(topic, "rmq_sys_")) return true;
  for (absl::string_view name : kNames) {
    if (topic == name) return true;
  }
  return false;
}

absl::Status ValidateClientTopic(absl::string_view field, absl::string_view topic) {
  if (absl::Status valid = ValidateTopicName(field, topic); !valid.ok()) return valid;
  if (!IsSystemTopic(topic)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(field, " \"", topic,
                   "\" is a system topic (rmq_sys_* and RocketMQ's system topic names): clients "
                   "can neither send to it nor receive from it"));
}

absl::Status ValidateGroupName(absl::string_view field, absl::string_view name) {
  return ValidateChars("group", field, name, kMaxGroupNameLength, "[%|a-zA-Z0-9_-]", IsTopicChar);
}

absl::Status ValidateNodeName(absl::string_view field, absl::string_view name) {
  return ValidateChars("cluster and broker", field, name, kMaxNodeNameLength, "[a-zA-Z0-9_.-]",
                       IsNodeChar);
}

absl::Status ValidateMessageId(absl::string_view field, absl::string_view id) {
  return ValidateChars("message id", field, id, kMaxMessageIdLength, "visible ASCII [!-~]",
                       IsVisibleAscii);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view field, absl::string_view endpoint) {
  const std::string rule = "want host:port with an IPv4 address or DNS name and port 1..65535";
  size_t colon = endpoint.rfind(':');
  if (endpoint.empty() || colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", endpoint, "\" has no port (", rule, ")"));
  }
  absl::string_view host = endpoint.substr(0, colon);
  absl::string_view port_text = endpoint.substr(colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(field, " \"", endpoint, "\" has invalid port \"",
                                                   port_text, "\" (", rule, ")"));
  }
  HostPort out;
  out.host = std::string(host);
  out.port = port;
  out.host_is_ipv4 = IsIpv4(host);
  if (!out.host_is_ipv4 && !IsDnsName(host)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " \"", endpoint, "\" has invalid host \"", host, "\" (", rule, ")"));
  }
  return out;
}

bool IsReservedPropertyKey(absl::string_view key) { return ReservedKeys().count(key) > 0; }

}  // namespace apogee
