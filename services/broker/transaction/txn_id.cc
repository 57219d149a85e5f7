#include "services/broker/transaction/txn_id.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

absl::Status Invalid(std::string message) {
  return WithV2Code(absl::InvalidArgumentError(std::move(message)),
                    apache::rocketmq::v2::INVALID_TRANSACTION_ID);
}

}  // namespace

std::string FormatTransactionId(absl::string_view broker_name, int64_t half_offset) {
  return absl::StrCat(broker_name, ":", absl::Hex(half_offset));
}

absl::StatusOr<TransactionId> ParseTransactionId(absl::string_view id) {
  if (id.empty()) return Invalid("transaction_id is empty");
  const size_t colon = id.rfind(':');
  const absl::string_view hex = colon == absl::string_view::npos ? "" : id.substr(colon + 1);
  uint64_t offset = 0;
  if (colon == 0 || hex.empty() || hex.size() > 16 || !absl::SimpleHexAtoi(hex, &offset) ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != absl::string_view::npos ||
      offset > static_cast<uint64_t>(INT64_MAX)) {
    return Invalid(absl::StrCat("transaction_id \"", id.substr(0, 200),
                                "\" is not \"<broker name>:<hex offset>\""));
  }
  return TransactionId{std::string(id.substr(0, colon)), static_cast<int64_t>(offset)};
}

}  // namespace apogee::broker
