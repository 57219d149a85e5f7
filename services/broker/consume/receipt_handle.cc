#include "services/broker/consume/receipt_handle.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {

// Format: "a1:<topic>:<queue>:<offset>:<delivery id>". Topic names cannot
// contain ':' so the split is unambiguous.
std::string ReceiptHandle::Encode() const {
  return absl::StrCat("a1:", topic, ":", queue_id, ":", offset, ":", delivery_id);
}

absl::StatusOr<ReceiptHandle> ReceiptHandle::Decode(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  ReceiptHandle h;
  if (parts.size() != 5 || parts[0] != "a1" || parts[1].empty() ||
      !absl::SimpleAtoi(parts[2], &h.queue_id) || !absl::SimpleAtoi(parts[3], &h.offset) ||
      !absl::SimpleAtoi(parts[4], &h.delivery_id)) {
    return WithV2Code(
        absl::InvalidArgumentError(absl::StrCat("receipt handle \"", text.substr(0, 200),
                                                "\" is malformed (not issued by this broker)")),
        apache::rocketmq::v2::INVALID_RECEIPT_HANDLE);
  }
  h.topic = parts[1];
  return h;
}

}  // namespace apogee::broker
