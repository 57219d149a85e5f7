#include "services/store/typed/timer_service.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"
#include "services/store/typed/record_copy.h"

namespace apogee::store {
namespace {

// 5 ms .. 60 s (message-types.md §7).
prometheus::Histogram::BucketBoundaries LatenessBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace

TimerService::TimerService(Store* store, const Clock* clock, TimerServiceOptions options,
                           prometheus::Registry* registry)
    : store_(store), clock_(clock), options_(options) {
  if (registry == nullptr) return;
  fired_ = &prometheus::BuildCounter()
                .Name("apogee_store_timers_fired_total")
                .Help("Delayed messages delivered to their target queue")
                .Register(*registry)
                .Add({});
  dropped_ = &prometheus::BuildCounter()
                  .Name("apogee_store_timers_dropped_total")
                  .Help("Delayed messages not delivered because their target topic was deleted")
                  .Register(*registry)
                  .Add({});
  pending_ = &prometheus::BuildGauge()
                  .Name("apogee_store_timers_pending")
                  .Help("Delayed messages waiting for their delivery time")
                  .Register(*registry)
                  .Add({});
  lateness_ = &prometheus::BuildHistogram()
                   .Name("apogee_store_timer_lateness_seconds")
                   .Help("Store time of a delivered copy minus its delivery time")
                   .Register(*registry)
                   .Add({}, LatenessBuckets());
}

TimerService::~TimerService() { Stop(); }

void TimerService::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void TimerService::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void TimerService::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
  rescan_ = true;
}

int64_t TimerService::fired_total() const {
  absl::MutexLock lock(&mu_);
  return fired_total_;
}

absl::StatusOr<FireReport> TimerService::FireDue() {
  absl::MutexLock pass(&pass_mu_);
  return FireDueLocked();
}

absl::StatusOr<int32_t> TimerService::Route(const RecordView& timer) const {
  const std::string target_topic(timer.target_topic());
  absl::StatusOr<TopicConfig> target = store_->GetTopic(target_topic);
  if (target.ok() && target->incarnation_start <= timer.commit_offset()) {
    return timer.target_queue() % target->queue_count;  // the topic may have shrunk
  }
  if (!target.ok() && target.status().code() != absl::StatusCode::kNotFound) {
    return target.status();
  }
  // Unknown, not deleted: an acknowledged message is never dropped for a
  // config this store has not received yet.
  if (!target.ok() && store_->IncarnationStart(target_topic) <= timer.commit_offset()) {
    return kHeld;
  }
  return kGone;
}

absl::Status TimerService::AwaitCommittedDispatched(const char* what) const {
  const LogOffsets offsets = store_->GetLogOffsets();
  if (!store_->WaitForDispatch(offsets.committed, options_.dispatch_wait)) {
    return absl::UnavailableError(absl::StrCat("timers: indexes do not cover the log up to ",
                                               offsets.committed, " yet; not ", what));
  }
  return absl::OkStatus();
}

absl::StatusOr<FireReport> TimerService::FireDueLocked() {
  FireReport report;
  if (pending_ != nullptr) pending_->Set(static_cast<double>(store_->pending_counts().timers));
  if (store_->following()) {  // only the master fires
    scan_from_ms_ = 0;        // a truncation meanwhile may give timers back
    return report;
  }
  {
    absl::MutexLock lock(&mu_);
    if (rescan_) scan_from_ms_ = 0;  // a timer was indexed: it may be due before the watermark
    rescan_ = false;
  }
  APOGEE_RETURN_IF_ERROR(AwaitCommittedDispatched("firing"));
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  APOGEE_ASSIGN_OR_RETURN(std::vector<DueEntry> due,
                          store_->ScanDueTimers(scan_from_ms_, now_ms, options_.batch_limit));
  if (due.empty()) return report;
  std::vector<StoredRecord> timers;
  std::vector<RecordInput> batch;
  int64_t held_from_ms = std::numeric_limits<int64_t>::max();
  timers.reserve(due.size());
  batch.reserve(due.size());
  for (const DueEntry& entry : due) {
    APOGEE_ASSIGN_OR_RETURN(StoredRecord record, store_->ReadAt(entry.commit_offset));
    const RecordView timer = record.view();
    if (timer.kind() != RecordKind::kTimer || timer.at_ms() > now_ms) {
      return absl::DataLossError(absl::StrCat("pending timer at offset ", entry.commit_offset,
                                              " is a ", RecordKindName(timer.kind()),
                                              " record due at ", timer.at_ms()));
    }
    APOGEE_ASSIGN_OR_RETURN(const int32_t queue, Route(timer));
    if (queue == kHeld) {
      ++report.held;
      held_from_ms = std::min(held_from_ms, entry.at_ms);
      continue;
    }
    batch.push_back(queue == kGone ? CopyRecord(timer, RecordKind::kDropped, kTimerTopic, 0, false)
                                   : CopyRecord(timer, RecordKind::kFired,
                                                std::string(timer.target_topic()), queue, true));
    timers.push_back(std::move(record));
  }
  if (report.held > 0) LogHeld(report.held);
  std::vector<AppendResult> appended;
  if (!batch.empty()) {
    APOGEE_ASSIGN_OR_RETURN(appended, store_->Append(batch));
  }
  for (size_t i = 0; i < batch.size() && i < appended.size(); ++i) {
    if (batch[i].ext.kind == RecordKind::kDropped) {
      ++report.dropped;
      LogDropped(batch[i]);
      continue;
    }
    ++report.fired;
    RecordFired(appended[i].store_timestamp_ms - batch[i].ext.at_ms);
  }
  if (options_.watch != nullptr) {
    std::map<TopicQueue, int64_t> moved;  // coalesced: the newest end per queue
    for (size_t i = 0; i < batch.size() && i < appended.size(); ++i) {
      if (batch[i].ext.kind != RecordKind::kFired) continue;
      int64_t& next = moved[TopicQueue{batch[i].topic, batch[i].queue_id}];
      next = std::max(next, appended[i].queue_offset + 1);
    }
    std::vector<QueueAdvance> advances;
    for (const auto& [queue, next] : moved) advances.push_back({queue, next});
    options_.watch->Publish(advances);
  }
  // A full batch of held timers only would make the next pass the same one.
  report.more = static_cast<int>(due.size()) == options_.batch_limit && !batch.empty();
  // Everything due before the last fired one is fired (or resolved): the
  // next scan seeks past their deleted keys instead of walking them, but
  // starts at the first held one so that it fires once its topic arrives.
  scan_from_ms_ = std::min(due.back().at_ms, held_from_ms);
  absl::MutexLock lock(&mu_);
  fired_total_ += report.fired;
  return report;
}

absl::StatusOr<int64_t> TimerService::CarryTimersBefore(int64_t end) {
  CarryProgress progress;
  while (!progress.done) {
    // One batch per hold of the pass lock: a long carry delays firing by
    // one batch at most.
    absl::MutexLock pass(&pass_mu_);
    APOGEE_RETURN_IF_ERROR(CarryBatchLocked(end, &progress));
  }
  {
    absl::MutexLock lock(&mu_);
    rescan_ = true;  // the copies are new due-index keys
  }
  if (progress.copies_end > 0 &&
      !store_->WaitForDispatch(progress.copies_end, options_.dispatch_wait)) {
    return absl::UnavailableError(absl::StrCat("timers: ", progress.carried,
                                               " moved copies not indexed yet (log up to ",
                                               progress.copies_end, "); their segments stay"));
  }
  if (progress.carried > 0) {
    std::fprintf(stderr, "event=timers_carried count=%lld below=%lld\n",
                 static_cast<long long>(progress.carried), static_cast<long long>(end));
  }
  return progress.carried;
}

absl::Status TimerService::CarryBatchLocked(int64_t end, CarryProgress* progress) {
  if (store_->following()) {
    return absl::FailedPreconditionError(
        "this store follows a master: timers are carried by the master");
  }
  // Every FIRED, DROPPED or moved copy already in the log (this carry's
  // earlier batches too) has ended its subject's pending entry, so nothing
  // is carried that was fired or carried already.
  APOGEE_RETURN_IF_ERROR(AwaitCommittedDispatched("carrying"));
  APOGEE_ASSIGN_OR_RETURN(std::vector<DueEntry> entries,
                          store_->ScanPendingBefore(progress->from, end, options_.batch_limit));
  std::vector<RecordInput> batch;
  int64_t bytes = 0;
  size_t taken = 0;
  for (; taken < entries.size() && (batch.empty() || bytes < options_.carry_batch_bytes); ++taken) {
    const DueEntry& entry = entries[taken];
    if (entry.kind != RecordKind::kTimer) continue;  // HALF pins; DISCARDED goes
    APOGEE_ASSIGN_OR_RETURN(StoredRecord record, store_->ReadAt(entry.commit_offset));
    if (record.view().kind() != RecordKind::kTimer) {
      return absl::DataLossError(absl::StrCat("pending timer at offset ", entry.commit_offset,
                                              " is a ", RecordKindName(record.view().kind()),
                                              " record"));
    }
    // A moved copy's own offset is what Route compares with the target's
    // incarnation later, so a target deleted since is settled now.
    APOGEE_ASSIGN_OR_RETURN(const int32_t queue, Route(record.view()));
    if (queue == kGone) {
      batch.push_back(CopyRecord(record.view(), RecordKind::kDropped, kTimerTopic, 0, false));
    } else {
      batch.push_back(CopyRecord(record.view(), RecordKind::kTimer, kTimerTopic, 0, true));
      ++batch.back().ext.count;  // times carried: marks a moved copy, whose subject may be 0
    }
    bytes += entry.size;
  }
  if (!batch.empty()) {
    APOGEE_ASSIGN_OR_RETURN(std::vector<AppendResult> appended, store_->Append(batch));
    progress->copies_end = appended.back().commit_offset + appended.back().size;
    for (const RecordInput& in : batch) {
      if (in.ext.kind == RecordKind::kTimer) {
        ++progress->carried;
      } else {
        LogDropped(in);
      }
    }
  }
  progress->done =
      taken == entries.size() && static_cast<int>(entries.size()) < options_.batch_limit;
  if (!progress->done) progress->from = entries[taken - 1].commit_offset + 1;
  return absl::OkStatus();
}

void TimerService::LogDropped(const RecordInput& dropped) {
  if (dropped_ != nullptr) dropped_->Increment();
  std::fprintf(stderr,
               "event=timer_dropped offset=%lld topic=\"%s\" reason=\"target topic deleted\"\n",
               static_cast<long long>(dropped.ext.subject), dropped.ext.target_topic.c_str());
}

void TimerService::LogHeld(int held) {
  const absl::Time now = absl::Now();
  if (now - last_held_log_ < absl::Seconds(10)) return;
  last_held_log_ = now;
  std::fprintf(stderr,
               "event=timers_held count=%d reason=\"target topic unknown to this store (not "
               "replicated yet?); kept pending\"\n",
               held);
}

void TimerService::RecordFired(int64_t lateness_ms) {
  if (fired_ != nullptr) fired_->Increment();
  if (lateness_ != nullptr) {
    lateness_->Observe(static_cast<double>(std::max<int64_t>(0, lateness_ms)) / 1000.0);
  }
}

void TimerService::Loop() {
  absl::Time last_error_log = absl::InfinitePast();
  for (;;) {
    absl::Duration wait = options_.idle_wait;
    absl::StatusOr<FireReport> report = FireDue();
    if (!report.ok()) {
      wait = absl::Milliseconds(100);
      if (absl::Now() - last_error_log > absl::Seconds(10)) {
        last_error_log = absl::Now();
        std::fprintf(stderr, "event=timer_pass_failed error=\"%s\"\n",
                     std::string(report.status().message()).c_str());
      }
    } else if (report->more) {
      wait = absl::ZeroDuration();
    } else if (!store_->following()) {
      absl::StatusOr<std::optional<int64_t>> next = store_->NextTimerDue();
      if (next.ok() && next->has_value()) {
        // Wait to the exact ms (no wheel tick); at least 1 ms, so a timer
        // due but not yet indexed does not spin the thread.
        const absl::Duration until = absl::FromUnixMillis(**next) - clock_->Now();
        wait = std::clamp(until, absl::Milliseconds(1), options_.idle_wait);
      }
    }
    absl::MutexLock lock(&mu_);
    if (wait > absl::ZeroDuration()) {
      mu_.AwaitWithTimeout(absl::Condition(this, &TimerService::WokenLocked), wait);
    }
    if (stopping_) return;
    wake_ = false;
  }
}

}  // namespace apogee::store
