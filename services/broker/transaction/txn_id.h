// Transaction ids (docs/design/message-types.md, decision 7):
// "<broker name>:<hex commit-log offset of the half message>". The id names
// its location, so any broker of the group (also after a failover) and any
// client of the producer group can resolve it without a lookup table.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apogee::broker {

struct TransactionId {
  std::string broker_name;
  int64_t half_offset = 0;
};

std::string FormatTransactionId(absl::string_view broker_name, int64_t half_offset);
// Split at the last ':'. INVALID_ARGUMENT (tagged INVALID_TRANSACTION_ID)
// naming the id when it is empty or malformed.
absl::StatusOr<TransactionId> ParseTransactionId(absl::string_view id);

}  // namespace apogee::broker
