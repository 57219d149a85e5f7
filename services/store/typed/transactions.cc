#include "services/store/typed/transactions.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"
#include "services/store/typed/record_copy.h"

namespace apogee::store {
namespace {

// How long an action waits for another one on the same half (§3.3).
constexpr absl::Duration kClaimWait = absl::Seconds(1);
// How long an action waits for the indexes (catch-up, its own resolver).
constexpr absl::Duration kDispatchWait = absl::Seconds(5);

absl::string_view ResolutionName(Resolution r) {
  switch (r) {
    case Resolution::kCommit:
      return "commit";
    case Resolution::kRollback:
      return "rollback";
    case Resolution::kDiscard:
      return "discard";
  }
  return "?";
}

// The resolver kind each resolution appends.
RecordKind ResolverKind(Resolution r) {
  switch (r) {
    case Resolution::kCommit:
      return RecordKind::kCommitted;
    case Resolution::kRollback:
      return RecordKind::kRolledBack;
    case Resolution::kDiscard:
      return RecordKind::kDiscarded;
  }
  return RecordKind::kNormal;
}

// "already committed at offset 123" for an error.
std::string AlreadyText(RecordKind kind, int64_t resolver) {
  absl::string_view what = kind == RecordKind::kCommitted    ? "committed"
                           : kind == RecordKind::kRolledBack ? "rolled back"
                           : kind == RecordKind::kDiscarded  ? "discarded"
                                                             : RecordKindName(kind);
  return absl::StrCat("already ", what, " (record at commit offset ", resolver, ")");
}

prometheus::Counter* Resolved(prometheus::Registry* registry, const char* resolution) {
  return &prometheus::BuildCounter()
              .Name("apogee_store_transactions_resolved_total")
              .Help("Half messages resolved, by resolution")
              .Register(*registry)
              .Add({{"resolution", resolution}});
}

}  // namespace

// Holds a subject in the in-progress set from before its resolver is
// appended until the dispatcher has indexed that resolver (§1.3).
class TransactionService::Claim {
 public:
  Claim(TransactionService* service, int64_t subject) : service_(service), subject_(subject) {
    absl::MutexLock lock(&service_->mu_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(service_->mu_) {
      return !service_->in_progress_.contains(subject_);
    };
    held_ = service_->mu_.AwaitWithTimeout(absl::Condition(&free), kClaimWait);
    if (held_) service_->in_progress_.insert(subject_);
  }
  ~Claim() {
    if (!held_) return;
    if (appended_.has_value() &&
        !service_->store_->WaitForDispatch(*appended_ + 1, kDispatchWait)) {
      std::fprintf(stderr,
                   "event=transaction_resolver_not_indexed subject=%lld resolver=%lld "
                   "wait_ms=%lld\n",
                   static_cast<long long>(subject_), static_cast<long long>(*appended_),
                   static_cast<long long>(absl::ToInt64Milliseconds(kDispatchWait)));
    }
    absl::MutexLock lock(&service_->mu_);
    service_->in_progress_.erase(subject_);
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;

  absl::Status status() const {
    if (held_) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("the transaction at commit offset ", subject_,
                                               " is being resolved by another request; retry"));
  }
  void Appended(int64_t commit_offset) { appended_ = commit_offset; }

 private:
  TransactionService* const service_;
  const int64_t subject_;
  bool held_ = false;
  std::optional<int64_t> appended_;
};

TransactionService::TransactionService(Store* store, prometheus::Registry* registry,
                                       QueueWatch* watch)
    : store_(store), watch_(watch) {
  if (registry == nullptr) return;
  committed_ = Resolved(registry, "commit");
  rolled_back_ = Resolved(registry, "rollback");
  discarded_ = Resolved(registry, "discard");
  checks_ = &prometheus::BuildCounter()
                 .Name("apogee_store_transaction_checks_total")
                 .Help("Checks of pending half messages recorded (CHECKED records)")
                 .Register(*registry)
                 .Add({});
}

absl::Status TransactionService::CheckReady() const {
  if (store_->following()) {
    return absl::FailedPreconditionError(
        "this store follows a master: transactions are resolved on the master");
  }
  const LogOffsets offsets = store_->GetLogOffsets();
  if (!store_->WaitForDispatch(offsets.committed, kDispatchWait)) {
    return absl::UnavailableError(
        absl::StrCat("the indexes do not cover the log up to ", offsets.committed, " yet; retry"));
  }
  return absl::OkStatus();
}

absl::StatusOr<StoredRecord> TransactionService::ReadSubject(int64_t offset,
                                                             const ResolveRequest& request) const {
  auto not_found = [&](absl::string_view why) {
    return absl::NotFoundError(absl::StrCat("no half message ", request.message_id,
                                            " at commit offset ", offset, ": ", why));
  };
  if (offset < store_->GetLogOffsets().min || offset >= store_->GetLogOffsets().committed) {
    return not_found("offset outside the log");
  }
  absl::StatusOr<StoredRecord> record = store_->ReadAt(offset);
  if (!record.ok()) {
    if (record.status().code() == absl::StatusCode::kUnavailable) return record.status();
    return not_found(record.status().message());
  }
  const RecordView v = record->view();
  if (v.kind() != RecordKind::kHalf && v.kind() != RecordKind::kDiscarded) {
    return not_found(absl::StrCat("the record there is a ", RecordKindName(v.kind()), " record"));
  }
  if (!request.message_id.empty() && v.message_id() != request.message_id) {
    return not_found(absl::StrCat("the record there is message ", v.message_id()));
  }
  if (!request.target_topic.empty() && v.target_topic() != request.target_topic) {
    return not_found(absl::StrCat("the message there is for topic \"", v.target_topic(), "\""));
  }
  return record;
}

absl::StatusOr<ResolveResult> TransactionService::Apply(Claim& claim, const StoredRecord& subject,
                                                        Resolution resolution) {
  const RecordView v = subject.view();
  RecordInput resolver;
  switch (resolution) {
    case Resolution::kCommit: {
      absl::StatusOr<TopicConfig> target = store_->GetTopic(std::string(v.target_topic()));
      if (!target.ok() && target.status().code() != absl::StatusCode::kNotFound) {
        return target.status();
      }
      if (!target.ok() || target->incarnation_start > v.commit_offset()) {
        // Stays pending: the checker discards it later, an operator can see it.
        return absl::FailedPreconditionError(absl::StrCat("cannot commit message ", v.message_id(),
                                                          ": its topic \"", v.target_topic(),
                                                          "\" was deleted"));
      }
      resolver = CopyRecord(v, RecordKind::kCommitted, std::string(v.target_topic()),
                            v.target_queue() % target->queue_count, true);
      break;
    }
    case Resolution::kRollback:
      resolver = CopyRecord(v, RecordKind::kRolledBack, kTransOpTopic, 0, false);
      break;
    case Resolution::kDiscard:
      resolver = CopyRecord(v, RecordKind::kDiscarded, kTransCheckMaxTopic, 0, true);
      break;
  }
  if (resolution == Resolution::kDiscard) {
    // The DISCARDED copy keeps the number of checks it gave up after.
    APOGEE_ASSIGN_OR_RETURN(std::optional<DueEntry> entry, store_->GetPending(v.commit_offset()));
    if (entry.has_value()) resolver.ext.count = entry->count;
  }
  const TopicQueue target{resolver.topic, resolver.queue_id};
  APOGEE_ASSIGN_OR_RETURN(std::vector<AppendResult> appended, store_->Append({resolver}));
  claim.Appended(appended[0].commit_offset);
  if (resolution == Resolution::kCommit && watch_ != nullptr) {
    watch_->Publish({QueueAdvance{target, appended[0].queue_offset + 1}});
  }
  prometheus::Counter* counter = resolution == Resolution::kCommit     ? committed_
                                 : resolution == Resolution::kRollback ? rolled_back_
                                                                       : discarded_;
  if (counter != nullptr) counter->Increment();
  if (resolution == Resolution::kDiscard) {
    std::fprintf(stderr,
                 "event=transaction_discarded offset=%lld message_id=\"%s\" topic=\"%s\" "
                 "checks=%u\n",
                 static_cast<long long>(v.commit_offset()), std::string(v.message_id()).c_str(),
                 std::string(v.target_topic()).c_str(), resolver.ext.count);
  }
  return ResolveResult{false, appended[0]};
}

absl::StatusOr<ResolveResult> TransactionService::Resolve(const ResolveRequest& request) {
  APOGEE_RETURN_IF_ERROR(CheckReady());
  Claim claim(this, request.half_offset);
  APOGEE_RETURN_IF_ERROR(claim.status());
  APOGEE_ASSIGN_OR_RETURN(StoredRecord half, ReadSubject(request.half_offset, request));
  if (half.view().kind() != RecordKind::kHalf) {
    return absl::NotFoundError(absl::StrCat("no half message at commit offset ",
                                            request.half_offset, ": the record there is a ",
                                            RecordKindName(half.view().kind()), " record"));
  }
  APOGEE_ASSIGN_OR_RETURN(std::optional<DueEntry> pending, store_->GetPending(request.half_offset));
  if (pending.has_value()) return Apply(claim, half, request.resolution);

  APOGEE_ASSIGN_OR_RETURN(auto resolved, store_->GetResolved(request.half_offset));
  if (!resolved.has_value()) {
    return absl::NotFoundError(absl::StrCat("half message ", request.message_id,
                                            " at commit offset ", request.half_offset,
                                            " is neither pending nor resolved"));
  }
  const auto [kind, resolver] = *resolved;
  if (kind == ResolverKind(request.resolution)) return ResolveResult{true, std::nullopt};
  if (kind != RecordKind::kDiscarded || request.resolution == Resolution::kDiscard) {
    return absl::FailedPreconditionError(absl::StrCat("cannot ", ResolutionName(request.resolution),
                                                      " message ", half.view().message_id(), ": ",
                                                      AlreadyText(kind, resolver)));
  }
  // A late commit or rollback of a discarded half acts on its DISCARDED
  // record, through the same rules (so it too happens at most once).
  Claim discarded_claim(this, resolver);
  APOGEE_RETURN_IF_ERROR(discarded_claim.status());
  APOGEE_ASSIGN_OR_RETURN(StoredRecord discarded, ReadSubject(resolver, request));
  APOGEE_ASSIGN_OR_RETURN(std::optional<DueEntry> still, store_->GetPending(resolver));
  if (still.has_value()) return Apply(discarded_claim, discarded, request.resolution);
  APOGEE_ASSIGN_OR_RETURN(auto after, store_->GetResolved(resolver));
  if (after.has_value() && after->first == ResolverKind(request.resolution)) {
    return ResolveResult{true, std::nullopt};
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", ResolutionName(request.resolution), " message ",
                   half.view().message_id(), ": it was discarded after its checks and then ",
                   after.has_value() ? AlreadyText(after->first, after->second)
                                     : std::string("dropped by retention")));
}

absl::Status TransactionService::RecordCheck(int64_t half_offset, uint32_t check_count,
                                             int64_t next_check_ms) {
  APOGEE_RETURN_IF_ERROR(CheckReady());
  Claim claim(this, half_offset);
  APOGEE_RETURN_IF_ERROR(claim.status());
  APOGEE_ASSIGN_OR_RETURN(std::optional<DueEntry> pending, store_->GetPending(half_offset));
  if (!pending.has_value() || pending->kind != RecordKind::kHalf) {
    return absl::FailedPreconditionError(
        absl::StrCat("no pending half message at commit offset ", half_offset));
  }
  if (check_count != pending->count + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("check_count ", check_count, " of the half message at commit offset ",
                     half_offset, " is stale: it was checked ", pending->count, " times (expected ",
                     pending->count + 1, ")"));
  }
  RecordInput checked;
  checked.topic = kTransOpTopic;
  checked.ext.kind = RecordKind::kChecked;
  checked.ext.subject = half_offset;
  checked.ext.at_ms = next_check_ms;
  checked.ext.count = check_count;
  APOGEE_ASSIGN_OR_RETURN(std::vector<AppendResult> appended, store_->Append({checked}));
  claim.Appended(appended[0].commit_offset);
  if (checks_ != nullptr) checks_->Increment();
  return absl::OkStatus();
}

absl::StatusOr<ListPendingResult> TransactionService::ListPending(
    const ListPendingRequest& request) const {
  if (request.limit < 1 || request.limit > kMaxListPending) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit ", request.limit, " is out of range [1, ", kMaxListPending, "]"));
  }
  const bool due = request.due_before_ms.has_value();
  if (request.kind != RecordKind::kHalf && request.kind != RecordKind::kTimer &&
      (request.kind != RecordKind::kDiscarded || due)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind ", RecordKindName(request.kind),
                     " cannot be listed (allowed: TIMER, HALF; DISCARDED without due_before)"));
  }
  const LogOffsets offsets = store_->GetLogOffsets();
  store_->WaitForDispatch(offsets.committed, kDispatchWait);  // best effort: a list may lag
  // One more than asked tells whether more follow.
  APOGEE_ASSIGN_OR_RETURN(
      std::vector<DueEntry> entries,
      due ? store_->ScanDue(request.kind, 0, *request.due_before_ms, request.limit + 1)
          : store_->ScanPending(request.kind, request.after_offset, request.limit + 1));
  ListPendingResult result;
  result.more = static_cast<int>(entries.size()) > request.limit;
  entries.resize(std::min<size_t>(entries.size(), static_cast<size_t>(request.limit)));
  for (const DueEntry& entry : entries) {
    absl::StatusOr<StoredRecord> record = store_->ReadAt(entry.commit_offset);
    if (!record.ok()) {
      if (record.status().code() == absl::StatusCode::kUnavailable) return record.status();
      continue;  // dropped by retention meanwhile
    }
    if (!request.target_topic.empty() && record->view().target_topic() != request.target_topic) {
      continue;
    }
    result.records.push_back(PendingRecord{*std::move(record), entry});
  }
  return result;
}

}  // namespace apogee::store
