#include "services/broker/transaction/coordinator.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "services/broker/message/codec.h"
#include "services/broker/transaction/txn_id.h"
#include "services/common/status/status_macros.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

namespace sv1 = ::apogee::store::v1;

// The proxy's cap of a producer's orphaned_transaction_recovery_duration.
constexpr absl::Duration kMaxFirstCheck = absl::Hours(1);

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp out;
  const int64_t ms = absl::ToUnixMillis(t);
  out.set_seconds(ms / 1000);
  out.set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
  return out;
}

// The store's answer to a resolution, as the client sees it (§3.3).
absl::Status FromStoreResolveError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return WithV2Code(s, v2::INVALID_TRANSACTION_ID);
    case absl::StatusCode::kFailedPrecondition:
      if (absl::StrContains(s.message(), "follows a master")) {
        return WithV2Code(absl::UnavailableError(s.message()), v2::HA_NOT_AVAILABLE);
      }
      return WithV2Code(s, v2::INVALID_TRANSACTION_ID);
    case absl::StatusCode::kAborted:  // stored, not replicated in time; a retry answers OK
      return WithV2Code(s, v2::SLAVE_PERSISTENCE_TIMEOUT);
    default:
      return s;
  }
}

}  // namespace

TransactionCoordinator::TransactionCoordinator(TransactionOptions options, StoreClient* store,
                                               CheckSender send_check, const Clock* clock,
                                               prometheus::Registry* registry)
    : options_(std::move(options)),
      store_(store),
      send_check_(std::move(send_check)),
      clock_(clock) {
  if (registry == nullptr) return;
  end_total_ = &prometheus::BuildCounter()
                    .Name("apogee_end_transaction_total")
                    .Help("EndTransaction calls by resolution, source and result")
                    .Register(*registry);
  auto& checks = prometheus::BuildCounter()
                     .Name("apogee_transaction_checks_total")
                     .Help("Orphaned half messages checked with a producer, by result")
                     .Register(*registry);
  checks_sent_ = &checks.Add({{"result", "sent"}});
  checks_no_producer_ = &checks.Add({{"result", "no_producer"}});
  discarded_ = &prometheus::BuildCounter()
                    .Name("apogee_transactions_discarded_total")
                    .Help("Half messages moved to TRANS_CHECK_MAX_TIME_TOPIC after max checks")
                    .Register(*registry)
                    .Add({});
  pending_ = &prometheus::BuildGauge()
                  .Name("apogee_transaction_half_messages")
                  .Help("Half messages waiting for commit or rollback (store count)")
                  .Register(*registry)
                  .Add({});
}

absl::Time TransactionCoordinator::FirstCheck(const v2::SystemProperties& sp,
                                              absl::Time now) const {
  absl::Duration delay = options_.check_delay;
  if (sp.has_orphaned_transaction_recovery_duration()) {
    const auto& d = sp.orphaned_transaction_recovery_duration();
    const absl::Duration asked = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    delay = std::max(delay, std::min(asked, kMaxFirstCheck));
  }
  return now + delay;
}

absl::Status TransactionCoordinator::End(const std::string& topic,
                                         const v2::EndTransactionRequest& request) {
  absl::Status result = [&]() -> absl::Status {
    absl::StatusOr<TransactionId> id = ParseTransactionId(request.transaction_id());
    if (!id.ok()) return id.status();
    if (id->broker_name != options_.broker_name) {
      return WithV2Code(
          absl::InvalidArgumentError(absl::StrCat(
              "transaction_id \"", request.transaction_id(), "\" belongs to broker \"",
              id->broker_name, "\", not to this broker group \"", options_.broker_name, "\"")),
          v2::INVALID_TRANSACTION_ID);
    }
    sv1::ResolveTransactionRequest resolve;
    switch (request.resolution()) {
      case v2::COMMIT:
        resolve.set_resolution(sv1::RESOLUTION_COMMIT);
        break;
      case v2::ROLLBACK:
        resolve.set_resolution(sv1::RESOLUTION_ROLLBACK);
        break;
      default:  // "unknown" for now: the checker asks again later
        return absl::OkStatus();
    }
    resolve.set_half_offset(id->half_offset);
    resolve.set_message_id(request.message_id());
    resolve.set_target_topic(topic);
    auto resolved = store_->ResolveTransaction(resolve);
    return resolved.ok() ? absl::OkStatus() : FromStoreResolveError(resolved.status());
  }();
  CountEnd(request, result);
  return result;
}

void TransactionCoordinator::CountEnd(const v2::EndTransactionRequest& request,
                                      const absl::Status& result) {
  if (end_total_ == nullptr) return;
  v2::Status status;
  ToV2Status(result, &status);
  end_total_
      ->Add({{"resolution", v2::TransactionResolution_Name(request.resolution())},
             {"source", v2::TransactionSource_Name(request.source())},
             {"result", v2::Code_Name(status.code())}})
      .Increment();
}

absl::StatusOr<admin::v1::ListTransactionsResponse> TransactionCoordinator::List(
    const admin::v1::ListTransactionsRequest& request) {
  sv1::ListPendingRequest list;
  list.set_kind(request.discarded() ? sv1::RECORD_DISCARDED : sv1::RECORD_HALF);
  list.set_target_topic(request.topic());
  list.set_limit(request.limit() == 0 ? 100 : request.limit());
  list.set_after_offset(request.after_offset());
  APOGEE_ASSIGN_OR_RETURN(sv1::ListPendingResponse pending, store_->ListPending(list));
  admin::v1::ListTransactionsResponse out;
  out.set_more(pending.more());
  for (const sv1::StoredRecord& r : pending.records()) {
    admin::v1::TransactionView* view = out.add_transactions();
    // A discarded message is resolved by the id of its half, which the
    // DISCARDED record names as its subject.
    const int64_t half = request.discarded() ? r.subject_offset() : r.commit_log_offset();
    view->set_transaction_id(FormatTransactionId(options_.broker_name, half));
    view->set_message_id(r.message_id());
    view->set_topic(r.target_topic());
    view->set_queue_id(r.target_queue());
    *view->mutable_sent() = r.store_time();
    view->set_checks(r.check_count());
    if (!request.discarded() && r.has_at_time()) *view->mutable_next_check() = r.at_time();
    view->set_discarded(request.discarded());
  }
  return out;
}

absl::StatusOr<bool> TransactionCoordinator::Resolve(const std::string& transaction_id,
                                                     bool commit) {
  APOGEE_ASSIGN_OR_RETURN(TransactionId id, ParseTransactionId(transaction_id));
  if (id.broker_name != options_.broker_name) {
    return absl::InvalidArgumentError(absl::StrCat("transaction_id \"", transaction_id,
                                                   "\" belongs to broker \"", id.broker_name,
                                                   "\", not to \"", options_.broker_name, "\""));
  }
  sv1::ResolveTransactionRequest resolve;
  resolve.set_half_offset(id.half_offset);
  resolve.set_resolution(commit ? sv1::RESOLUTION_COMMIT : sv1::RESOLUTION_ROLLBACK);
  APOGEE_ASSIGN_OR_RETURN(sv1::ResolveTransactionResponse resolved,
                          store_->ResolveTransaction(resolve));
  std::fprintf(stderr, "event=transaction_resolved_by_operator id=%s resolution=%s already=%d\n",
               transaction_id.c_str(), commit ? "commit" : "rollback", resolved.already());
  return resolved.already();
}

absl::StatusOr<CheckReport> TransactionCoordinator::CheckDue() {
  CheckReport report;
  const absl::Time now = clock_->Now();
  sv1::ListPendingRequest list;
  list.set_kind(sv1::RECORD_HALF);
  *list.mutable_due_before() = ToTimestamp(now);
  list.set_limit(options_.batch_limit);
  list.set_include_body(true);  // the check command carries the message
  APOGEE_ASSIGN_OR_RETURN(sv1::ListPendingResponse due, store_->ListPending(list));
  report.more = due.more();
  for (const sv1::StoredRecord& half : due.records()) {
    const int64_t offset = half.commit_log_offset();
    const std::string id = FormatTransactionId(options_.broker_name, offset);
    if (half.check_count() >= options_.check_max) {
      sv1::ResolveTransactionRequest discard;
      discard.set_half_offset(offset);
      discard.set_message_id(half.message_id());
      discard.set_target_topic(half.target_topic());
      discard.set_resolution(sv1::RESOLUTION_DISCARD);
      auto discarded = store_->ResolveTransaction(discard);
      if (!discarded.ok()) {
        ++report.skipped;  // resolved meanwhile, or the store is busy: next pass
        continue;
      }
      ++report.discarded;
      if (discarded_ != nullptr) discarded_->Increment();
      std::fprintf(
          stderr, "event=transaction_discarded id=%s message_id=\"%s\" topic=\"%s\" checks=%d\n",
          id.c_str(), half.message_id().c_str(), half.target_topic().c_str(), half.check_count());
      continue;
    }
    // Count the check before sending it: a crash in between loses one
    // check and never adds one, so the maximum holds.
    sv1::RecordTransactionCheckRequest check;
    check.set_half_offset(offset);
    check.set_check_count(half.check_count() + 1);
    *check.mutable_next_check() = ToTimestamp(now + options_.check_interval);
    if (absl::Status recorded = store_->RecordTransactionCheck(check); !recorded.ok()) {
      ++report.skipped;
      continue;
    }
    ++report.checked;
    absl::StatusOr<v2::Message> message = FromStoreRecord(half);
    if (!message.ok()) {
      std::fprintf(stderr, "event=transaction_check_unreadable id=%s error=\"%s\"\n", id.c_str(),
                   std::string(message.status().message()).c_str());
      continue;
    }
    message->mutable_topic()->set_name(half.target_topic());  // not the half topic
    message->mutable_system_properties()->set_queue_id(half.target_queue());
    SetBodyDigest(&*message);  // clients refuse a check without one
    v2::TelemetryCommand command;
    auto* recover = command.mutable_recover_orphaned_transaction_command();
    *recover->mutable_message() = *std::move(message);
    recover->set_transaction_id(id);
    if (send_check_ != nullptr && send_check_(half.target_topic(), std::move(command))) {
      ++report.sent;
      if (checks_sent_ != nullptr) checks_sent_->Increment();
    } else if (checks_no_producer_ != nullptr) {
      checks_no_producer_->Increment();
    }
  }
  if (pending_ != nullptr) {
    if (auto stats = store_->GetStats(); stats.ok()) {
      pending_->Set(static_cast<double>(stats->pending_transactions()));
    }
  }
  return report;
}

}  // namespace apogee::broker
