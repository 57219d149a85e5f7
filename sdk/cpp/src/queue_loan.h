// A queue a push stream's broker lent to this consumer (apogee.broker.v1
// ReadFrom): its own thread pulls the queue from another broker of the
// group (a slave holding cold data), runs the listener on each message in
// queue order, and reports progress, until that broker says the reader is
// near the head again (or a message is to be retried, or a pull fails):
// then it hands the queue back and ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "apogee/filter_expression.h"
#include "apogee/message.h"
#include "sdk/cpp/src/channels.h"

namespace apogee::sdk {

struct QueueLoanOptions {
  std::string group;
  std::string topic;
  FilterExpression filter;
  std::string broker;    // group name (for ReceivedMessage::broker)
  std::string endpoint;  // where to pull from
  int32_t queue_id = 0;
  int64_t offset = 0;  // first queue offset to read
  int batch = 32;
  absl::Duration long_poll = absl::Milliseconds(200);
  absl::Duration request_timeout = absl::Seconds(3);
};

// Thread-safe to Stop from any thread but its own callbacks.
class QueueLoan {
 public:
  // true: the message was consumed.
  using Consume = std::function<bool(const ReceivedMessage&)>;
  // Every message before `offset` is consumed; `returned`: the loan ends.
  using Progress = std::function<void(int64_t offset, bool returned)>;

  QueueLoan(QueueLoanOptions options, Channels* channels, Consume consume, Progress progress);
  ~QueueLoan();  // Stop()

  // Ends the loan without handing the queue back (the broker took it back,
  // or the stream is gone): waits for a running listener call; no progress
  // is reported after it returns.
  void Stop();
  bool done() const { return done_.load(); }

 private:
  void Run();

  const QueueLoanOptions options_;
  Channels* const channels_;
  const Consume consume_;
  const Progress progress_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace apogee::sdk
