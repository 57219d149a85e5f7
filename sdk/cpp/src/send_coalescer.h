// Groups SendAsync messages of one topic into shared SendMessage calls
// ("lanes", one per topic). A message leaves at once while its topic has
// fewer than max_calls_in_flight calls out, so a lone send waits for
// nothing; under load messages gather behind the calls in flight and leave
// together when one of them finishes (CallDone), when the lane is full
// (messages or bytes), or `linger` after the lane's first message. It
// makes no call (it only carries each message's encoded entry as a
// grpc::Slice): the caller sends what Flush hands it and reports each
// call's end, so unit tests drive it with a ManualClock and no thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "apogee/producer.h"
#include "grpcpp/support/slice.h"
#include "sdk/cpp/src/route.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {

struct CoalescerOptions {
  absl::Duration linger = absl::Milliseconds(2);
  int max_messages = 512;
  int64_t max_bytes = 1 << 20;
  int max_calls_in_flight = 2;  // per topic (ProducerOptions::max_batch_calls_in_flight)
};

// Messages of one topic that leave in one SendMessage call, each as its
// encoded entry of the request (EncodeSendEntry); callbacks[i] belongs to
// entries[i].
struct OutgoingBatch {
  std::string topic;
  std::vector<QueueRef> queues;  // the topic's writable queues, newest route
  std::vector<grpc::Slice> entries;
  std::vector<SendCallback> callbacks;
  absl::Time oldest;  // when its first message was added
};

// What a broker's answer to one coalesced call means for each message.
struct BatchAnswer {
  // Not OK: the call failed as a whole (transport, or one status for all):
  // retry every message elsewhere or fail them all, as the policy says.
  absl::Status whole;
  // Otherwise per message: its receipt or its own rejection; nullopt for a
  // message the broker did not store for a retryable reason (it may go to
  // another broker; `retry_error` is the last such reason).
  std::vector<std::optional<absl::StatusOr<SendReceipt>>> each;
  absl::Status retry_error;
};

// `call` is the call's transport status; `queue` the broker it went to.
// The broker stores a call's valid messages in one append and rejects the
// invalid ones one by one (MULTIPLE_RESULTS when they differ).
BatchAnswer ReadBatchAnswer(const absl::Status& call,
                            const ::apache::rocketmq::v2::SendMessageResponse& response,
                            int messages, const std::string& topic, const QueueRef& queue);

// Thread-safe. `flush` runs outside the lock, on the thread that made the
// batch leave (Add, CallDone, FlushAll, or the linger thread); each batch it
// gets counts as a call in flight until CallDone(topic).
class SendCoalescer {
 public:
  using Flush = std::function<void(OutgoingBatch)>;

  // With `linger_thread` false nothing leaves on linger by itself: the
  // caller runs FlushExpired (tests).
  SendCoalescer(CoalescerOptions options, const Clock& clock, Flush flush,
                bool linger_thread = true);
  // Stops the linger thread; messages still waiting are dropped, so call
  // FlushAll and wait for their callbacks first.
  ~SendCoalescer();

  // `entry`: the message encoded (EncodeSendEntry).
  void Add(const std::string& topic, std::vector<QueueRef> queues, grpc::Slice entry,
           SendCallback callback);
  // A call of `topic` that Flush got has ended (all its messages answered).
  void CallDone(const std::string& topic);
  // Sends lanes whose first message waited `linger`.
  void FlushExpired();
  // Sends every waiting message now (shutdown).
  void FlushAll();

 private:
  struct Lane {
    OutgoingBatch pending;
    int64_t bytes = 0;
    int calls = 0;  // calls in flight
  };

  // Moves the lane's messages into `out` (one more call in flight).
  static void Take(Lane& lane, std::vector<OutgoingBatch>& out);
  void Send(std::vector<OutgoingBatch> batches);
  void LingerLoop();

  const CoalescerOptions options_;
  const Clock& clock_;
  const Flush flush_;

  absl::Mutex mu_;
  std::map<std::string, Lane> lanes_ ABSL_GUARDED_BY(mu_);
  uint64_t added_first_ ABSL_GUARDED_BY(mu_) = 0;  // lanes that got a first message
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread linger_;
};

}  // namespace apogee::sdk
