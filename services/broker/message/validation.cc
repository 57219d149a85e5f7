#include "services/broker/message/validation.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "services/common/naming/names.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

absl::Status Bad(v2::Code code, std::string message) {
  return WithV2Code(absl::InvalidArgumentError(std::move(message)), code);
}

// `field` must hold a value of `type`; the error lists the values it may.
absl::Status KnownEnumValue(absl::string_view field, int value,
                            const google::protobuf::EnumDescriptor* type, v2::Code code) {
  if (type->FindValueByNumber(value) != nullptr) return absl::OkStatus();
  std::vector<std::string> allowed;
  for (int i = 0; i < type->value_count(); ++i) {
    allowed.push_back(absl::StrCat(type->value(i)->name(), "=", type->value(i)->number()));
  }
  return Bad(code, absl::StrCat(field, " is ", value, ", not a ", type->name(),
                                " (allowed: ", absl::StrJoin(allowed, ", "), ")"));
}

}  // namespace

absl::Status ValidateMessageFields(const v2::Message& m, absl::string_view where) {
  const v2::SystemProperties& sp = m.system_properties();
  absl::Status id =
      ValidateMessageId(absl::StrCat(where, ".system_properties.message_id"), sp.message_id());
  if (!id.ok()) return WithV2Code(id, v2::ILLEGAL_MESSAGE_ID);
  const std::string type_field = absl::StrCat(where, ".system_properties.message_type");
  if (absl::Status s = KnownEnumValue(type_field, sp.message_type(), v2::MessageType_descriptor(),
                                      v2::BAD_REQUEST);
      !s.ok()) {
    return s;
  }
  if (sp.message_type() == v2::LITE || sp.message_type() == v2::PRIORITY) {
    return WithV2Code(absl::UnimplementedError(
                          absl::StrCat(type_field, " is ", v2::MessageType_Name(sp.message_type()),
                                       "; only NORMAL and FIFO messages are supported")),
                      v2::UNSUPPORTED);
  }
  if (absl::Status s =
          KnownEnumValue(absl::StrCat(where, ".system_properties.body_encoding"),
                         sp.body_encoding(), v2::Encoding_descriptor(), v2::BAD_REQUEST);
      !s.ok()) {
    return s;
  }
  if (sp.keys_size() > kMaxMessageKeys) {
    return Bad(v2::ILLEGAL_MESSAGE_KEY,
               absl::StrCat(where, " has ", sp.keys_size(), " keys (max ", kMaxMessageKeys, ")"));
  }
  for (int k = 0; k < sp.keys_size(); ++k) {
    if (sp.keys(k).size() > static_cast<size_t>(kMaxMessageKeyLength)) {
      return Bad(v2::ILLEGAL_MESSAGE_KEY,
                 absl::StrCat(where, ".system_properties.keys[", k, "] is ", sp.keys(k).size(),
                              " bytes (max ", kMaxMessageKeyLength, ")"));
    }
  }
  if (sp.tag().size() > static_cast<size_t>(kMaxMessageTagLength)) {
    return Bad(v2::ILLEGAL_MESSAGE_TAG,
               absl::StrCat(where, ".system_properties.tag is ", sp.tag().size(), " bytes (max ",
                            kMaxMessageTagLength, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateFilterType(const v2::FilterExpression& expression) {
  return KnownEnumValue("filter_expression.type", expression.type(), v2::FilterType_descriptor(),
                        v2::ILLEGAL_FILTER_EXPRESSION);
}

absl::Status ValidateClientType(absl::string_view field, int client_type) {
  return KnownEnumValue(field, client_type, v2::ClientType_descriptor(),
                        v2::UNRECOGNIZED_CLIENT_TYPE);
}

absl::Status ValidateQueryOffsetPolicy(int policy) {
  return KnownEnumValue("query_offset_policy", policy, v2::QueryOffsetPolicy_descriptor(),
                        v2::BAD_REQUEST);
}

absl::Status FromStoreAppendError(const absl::Status& store_error,
                                  const std::vector<int>& record_index,
                                  absl::string_view sync_policy) {
  if (store_error.code() == absl::StatusCode::kAborted) {
    return WithV2Code(
        absl::DeadlineExceededError(absl::StrCat(
            "the message is stored on the master but not yet held by enough in-sync slaves (",
            sync_policy.empty() ? "sync replication" : sync_policy, "): ", store_error.message())),
        v2::SLAVE_PERSISTENCE_TIMEOUT);
  }
  if (store_error.code() != absl::StatusCode::kInvalidArgument) return store_error;
  // The store names the record as "batch[<r>].<what>".
  absl::string_view detail = store_error.message();
  std::string message = "a message";
  if (absl::ConsumePrefix(&detail, "batch[")) {
    const size_t close = detail.find("].");
    int r = -1;
    if (close != absl::string_view::npos && absl::SimpleAtoi(detail.substr(0, close), &r) &&
        r >= 0 && r < static_cast<int>(record_index.size())) {
      message = absl::StrCat("messages[", record_index[r], "]");
      detail.remove_prefix(close + 2);
    } else {
      detail = store_error.message();
    }
  }
  return Bad(v2::BAD_REQUEST,
             absl::StrCat(message,
                          " was refused by the store (a limit the broker does not check "
                          "yet): ",
                          detail));
}

}  // namespace apogee::broker
