// The broker's side of transactional messages (docs/design/message-types.md
// §3): EndTransaction (commit or roll back a half message by its id) and
// the orphan checker, which asks a live producer of the topic about each
// half message left unresolved and gives up after --transaction_check_max
// checks (the message then goes to TRANS_CHECK_MAX_TIME_TOPIC). The store
// carries out each step exactly once; this module owns the policy.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "apogee/admin/v1/admin.pb.h"
#include "services/broker/store_client/store_client.h"
#include "services/common/clock/clock.h"

namespace prometheus {
class Counter;
class Gauge;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

struct TransactionOptions {
  std::string broker_name;  // the first part of every transaction id
  // First check after the send (a producer may ask for later with
  // orphaned_transaction_recovery_duration, capped at 1 h).
  absl::Duration check_delay = absl::Seconds(6);
  absl::Duration check_interval = absl::Seconds(60);  // between checks
  int check_max = 15;                                 // checks before the message is discarded
  int batch_limit = 1000;                             // half messages per checker pass
};

// Delivers a check to one live producer of `topic` (namespaced); false
// when the topic has none.
using CheckSender = std::function<bool(const std::string& topic, v2::TelemetryCommand command)>;

struct CheckReport {
  int checked = 0;    // checks recorded
  int sent = 0;       // ... and delivered to a producer
  int discarded = 0;  // gave up after the maximum
  int skipped = 0;    // another checker or a resolution won the race
  bool more = false;  // the batch was full
};

// Thread-safe.
class TransactionCoordinator {
 public:
  // `registry` may be null (no metrics).
  TransactionCoordinator(TransactionOptions options, StoreClient* store, CheckSender send_check,
                         const Clock* clock, prometheus::Registry* registry);

  const TransactionOptions& options() const { return options_; }
  // The time of a half message's first check (the HALF record's check time).
  absl::Time FirstCheck(const v2::SystemProperties& sp, absl::Time now) const;

  // EndTransaction for `topic` (namespaced). Blocks on the store: call from
  // a worker. Errors carry their v2 code (§3.3): INVALID_TRANSACTION_ID for
  // an empty, malformed or foreign id and for a message the store does not
  // hold as pending or resolved that way; SLAVE_PERSISTENCE_TIMEOUT when
  // the resolution is stored but not replicated in time.
  absl::Status End(const std::string& topic, const v2::EndTransactionRequest& request);

  // One checker pass over the half messages due now. Blocks on the store.
  absl::StatusOr<CheckReport> CheckDue();

  // Operators (apogee-admin transaction ...). Block on the store.
  absl::StatusOr<admin::v1::ListTransactionsResponse> List(
      const admin::v1::ListTransactionsRequest& request);
  // Commit or roll back by id alone (also a discarded message); `already`
  // when it was resolved this way before.
  absl::StatusOr<bool> Resolve(const std::string& transaction_id, bool commit);

 private:
  void CountEnd(const v2::EndTransactionRequest& request, const absl::Status& result);

  const TransactionOptions options_;
  StoreClient* const store_;
  const CheckSender send_check_;
  const Clock* const clock_;
  prometheus::Family<prometheus::Counter>* end_total_ = nullptr;
  prometheus::Counter* checks_sent_ = nullptr;
  prometheus::Counter* checks_no_producer_ = nullptr;
  prometheus::Counter* discarded_ = nullptr;
  prometheus::Gauge* pending_ = nullptr;
};

}  // namespace apogee::broker
