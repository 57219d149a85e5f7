// Producer: sends messages to the brokers that host a topic.
//
//   apogee::ProducerOptions options;
//   options.endpoints = {"127.0.0.1:9876"};
//   auto producer = apogee::Producer::Create(options);
//   if (!producer.ok()) return producer.status();
//   apogee::Message m;
//   m.topic = "T";
//   m.body = "hi";
//   absl::StatusOr<apogee::SendReceipt> r = (*producer)->Send(m);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apogee/client_options.h"
#include "apogee/message.h"

namespace apogee {

struct ProducerOptions : ClientOptions {
  // Whole-send deadline, retries included (fast fail).
  absl::Duration send_timeout = absl::Seconds(3);
  // Further attempts after a failed one, each on another broker when the
  // topic has one. Bad input is never retried.
  int max_retries = 2;
  // Threads that run SendAsync callbacks (the sends themselves wait on no
  // thread).
  int async_threads = 4;
  // SendAsync sends in flight at most (1..65536). Beyond it SendAsync
  // blocks its caller until one finishes (they end within send_timeout):
  // backpressure instead of a flood of sends whose deadlines all run out
  // together. A send that got no room in twice send_timeout fails with
  // RESOURCE_EXHAUSTED.
  int max_async_in_flight = 1024;
  // Bytes one send (a batch: bodies, properties, keys) may take on the wire
  // (64 KiB..1 GiB). The broker refuses larger requests before reading them
  // through (its --max_request_bytes, 17 MiB by default), so a larger batch
  // fails here with INVALID_ARGUMENT naming both sizes instead of being
  // retried; split it.
  int64_t max_request_bytes = 16 << 20;
  // SendAsync coalescing: async sends of one topic share SendMessage calls
  // (one call carries many messages; each message still gets its own
  // receipt or error). A message goes out at once while fewer than
  // `max_batch_calls_in_flight` calls of its topic are in flight (so a lone
  // send pays no wait); otherwise it joins the topic's next call, which
  // leaves when an earlier call finishes, when it holds max_batch_messages
  // or max_batch_bytes, or `linger` after its first message, whichever is
  // first. A message the broker rejects fails alone; a call that fails as
  // a whole is retried on another broker (max_retries, within the oldest
  // message's send_timeout). max_batch_messages = 1 sends one message per
  // call, as official clients do. Send and SendBatch are never coalesced.
  absl::Duration linger = absl::Milliseconds(2);  // 0..1s
  int max_batch_messages = 512;                   // 1..4096
  int64_t max_batch_bytes = 1 << 20;              // 1 KiB..max_request_bytes
  // 2, not more: on a busy host every extra call costs wake-ups in three
  // processes, and at 5k msg/s 4 calls made delivery slower (p50 2.6 vs
  // 2.0 ms, docs/benchmarks.md "Fewer produce calls at moderate rates").
  int max_batch_calls_in_flight = 2;  // 1..1024, per topic
  // Avoid a broker for a while after it was slow or failed.
  bool fault_avoidance = true;
};

using SendCallback = std::function<void(absl::StatusOr<SendReceipt>)>;

// Thread-safe: every method may be called from any thread. Routes refresh in
// the background. Shutdown() (also run by the destructor) waits for sends in
// flight, async ones included, and their callbacks.
class Producer {
 public:
  // Fails on bad options (no endpoints, an endpoint that is not host:port).
  static absl::StatusOr<std::unique_ptr<Producer>> Create(ProducerOptions options);
  ~Producer();

  // Sends one message; returns once the broker stored it, or the error of
  // the last attempt (INVALID_ARGUMENT for bad input, before any I/O).
  absl::StatusOr<SendReceipt> Send(const Message& message);

  // Like Send, without blocking on the broker: the message joins a
  // coalesced SendMessage call of its topic (see linger above), the call
  // (retries included) runs on gRPC's asynchronous API, and `callback` gets
  // this message's own receipt or error, once, on one of
  // `async_threads` producer threads. Checking the input and, the first time
  // a topic is used, fetching its route happen before SendAsync returns; so
  // does waiting for room when max_async_in_flight sends are in flight.
  // After Shutdown() the callback gets FAILED_PRECONDITION at once. A
  // callback must not call Shutdown() or destroy the producer.
  void SendAsync(Message message, SendCallback callback);

  // Sends messages of one topic in one request (all stored on one broker, or
  // none). Receipts are in input order.
  absl::StatusOr<std::vector<SendReceipt>> SendBatch(const std::vector<Message>& messages);

  // Stops accepting sends and waits for those in flight. Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace apogee
