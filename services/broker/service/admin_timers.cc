// AdminService: pending delayed messages, from the store's ListPending
// (docs/design/message-types.md §7, `apogee-admin timer list`).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/broker/service/admin_service.h"
#include "services/common/clock/proto_time.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {
namespace {

namespace sv1 = ::apogee::store::v1;

constexpr int kDefaultTimers = 100;
constexpr int kMaxTimers = 10000;

// A page token is "<due ms>:<commit offset>" of the last timer examined.
std::string PageToken(const sv1::ListPendingResponse& page) {
  return absl::StrCat(absl::ToUnixMillis(FromProtoTimestamp(page.resume_after_due())), ":",
                      page.resume_after_offset());
}

absl::Status ParsePageToken(const std::string& token, sv1::ListPendingRequest* request) {
  std::vector<std::string> parts = absl::StrSplit(token, ':');
  int64_t due_ms = 0, offset = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &due_ms) ||
      !absl::SimpleAtoi(parts[1], &offset) || due_ms < 0 || offset < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "after \"", token, "\" is not a page token of ListTimers (want <due ms>:<offset>)"));
  }
  *request->mutable_after_due() = ToProtoTimestamp(absl::FromUnixMillis(due_ms));
  request->set_after_offset(offset);
  return absl::OkStatus();
}

}  // namespace

void AdminService::ListTimers(UnaryCall call, const av1::ListTimersRequest* request,
                              av1::ListTimersResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    if (request->limit() < 0 || request->limit() > kMaxTimers) {
      return absl::InvalidArgumentError(
          absl::StrCat("limit is ", request->limit(), " (allowed: 1..", kMaxTimers, ")"));
    }
    sv1::ListPendingRequest pending;
    pending.set_kind(sv1::RECORD_TIMER);
    pending.set_limit(request->limit() == 0 ? kDefaultTimers : request->limit());
    if (!request->topic().empty()) {
      APOGEE_RETURN_IF_ERROR(ValidateTopicName("topic", request->topic()));
      pending.set_target_topic(request->topic());
    }
    if (!request->after().empty())
      APOGEE_RETURN_IF_ERROR(ParsePageToken(request->after(), &pending));
    APOGEE_ASSIGN_OR_RETURN(sv1::ListPendingResponse page, deps_.store->ListPending(pending));
    for (const sv1::StoredRecord& r : page.records()) {
      av1::PendingTimer* t = response->add_timers();
      t->set_message_id(r.message_id());
      t->set_topic(r.target_topic());
      t->set_queue_id(r.target_queue());
      *t->mutable_due() = r.at_time();
      t->set_offset(r.commit_log_offset());
      t->set_tag(r.tag());
      for (const std::string& key : r.keys()) t->add_keys(key);
    }
    response->set_more(page.more());
    if (page.more()) response->set_next(PageToken(page));
    response->set_pending(page.pending());
    return absl::OkStatus();
  });
}

}  // namespace apogee::broker
