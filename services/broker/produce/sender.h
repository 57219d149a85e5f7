// The broker's send path (v2 SendMessage) as a domain module: request and
// message checks, topic auto-create, queue choice, store record encoding,
// the store append, and the mapping of the store's answer (including a sync
// replication timeout) to per-message v2 results. The gRPC adapter
// (service/messaging_service.cc) only unwraps the call and finishes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "services/broker/consume/arrivals.h"
#include "services/broker/consume/tail_cache.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/message/codec.h"
#include "services/broker/metrics/probe.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"

namespace apogee::broker {

// Request-level checks of a SendMessage call: it carries messages and they
// share one topic (MESSAGE_CORRUPTED otherwise, naming both topics).
absl::Status CheckSendRequest(const v2::SendMessageRequest& request);

// Where a send came from and which broker stores it (filled into records).
struct SendOrigin {
  std::string topic;       // the topic with the request's namespace
  std::string peer_host;   // the client's "ip:port" (born host when blank)
  std::string store_host;  // this broker's advertised address
  // messages(i) as the client encoded it (EncodedMessages), stored as it is
  // instead of encoded again; empty: encode each. Valid while the request is.
  std::vector<absl::string_view> encoded;
};

// The encoded form of each of the `count` messages in a SendMessageRequest's
// bytes, found by walking its fields (nothing is parsed); empty when the
// bytes do not hold exactly `count`.
std::vector<absl::string_view> EncodedMessages(absl::string_view request, int count);

// The messages of one call, checked and encoded for the store.
struct SendPlan {
  std::vector<absl::Status> statuses;  // one per message; not OK: not sent
  std::vector<store::v1::AppendRecord> records;
  std::vector<int> record_index;  // records[r] is messages[record_index[r]]
  int64_t body_bytes = 0;         // bodies of `records`
};

// Checks each message (ValidateMessage, the topic's message type, the
// record headroom), picks its queue (by message group for FIFO, else
// `round_robin`'s next, one queue for all of the send's other messages) and
// encodes the ones that pass.
// A TRANSACTION message becomes a HALF record whose first check is
// `first_check(message)` (null: now + 6 s).
using FirstCheckFn = std::function<absl::Time(const v2::SystemProperties&, absl::Time now)>;
SendPlan PlanSend(const v2::SendMessageRequest& request, const TopicConfig& topic,
                  const SendOrigin& origin, const MessageLimits& limits, absl::Time now,
                  std::atomic<uint32_t>& round_robin, const FirstCheckFn& first_check = nullptr);

// Fills `response->entries` (one per message, in order: status, id and the
// queue offset of each stored one) from `plan` and the store's answer, and
// returns the call's status (MULTIPLE_RESULTS when entries differ). A store
// error stands for every record of the append (FromStoreAppendError:
// ABORTED -> SLAVE_PERSISTENCE_TIMEOUT naming `sync_policy`).
absl::Status AnswerSend(const v2::SendMessageRequest& request, SendPlan plan,
                        const absl::StatusOr<std::vector<store::v1::AppendResult>>& appended,
                        absl::string_view sync_policy, v2::SendMessageResponse* response);

struct SenderOptions {
  MessageLimits limits;
  // When set, sends are refused unless this broker is its group's writer
  // (HA_NOT_AVAILABLE) and a sync-replication timeout names its policy.
  const ha::RoleManager* roles = nullptr;
  // Transactional sends: the broker (group) name of transaction ids and the
  // first check time of a half message (TransactionCoordinator::FirstCheck).
  std::string broker_name;
  FirstCheckFn first_check;
  // Copies of the stored records of wanted topics go here (null: none).
  TailCache* tail = nullptr;
};

// Thread-safe.
class Sender {
 public:
  using Done = std::function<void(absl::Status top)>;

  Sender(SenderOptions options, StoreClient* store, TopicManager* topics, Arrivals* arrivals,
         Probe* probe, Executor* executor, const Clock* clock);

  // Sends the messages of `request` (which, like `response`, must live
  // until `done` ran) and fills `response->entries`; `done` gets the call's
  // status, on this thread for a refused request, otherwise on a worker or
  // the store client's answer thread. Never blocks the caller.
  void Send(const v2::SendMessageRequest& request, SendOrigin origin,
            v2::SendMessageResponse* response, Done done);

 private:
  void SendTo(const v2::SendMessageRequest& request, const TopicConfig& topic,
              const SendOrigin& origin, v2::SendMessageResponse* response, Done done);

  const SenderOptions options_;
  StoreClient* const store_;
  TopicManager* const topics_;
  Arrivals* const arrivals_;
  Probe* const probe_;
  Executor* const executor_;
  const Clock* const clock_;
  std::atomic<uint32_t> round_robin_{0};
};

}  // namespace apogee::broker
