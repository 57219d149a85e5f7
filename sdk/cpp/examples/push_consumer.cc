// Consumes with a callback over the broker's push stream for 10 seconds.
//   apogee-example-push_consumer [nameserver=127.0.0.1:9876] [topic=TopicTest] [group=GroupTest]
#include "apogee/push_consumer.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/time/clock.h"

int main(int argc, char** argv) {
  apogee::PushConsumerOptions options;
  options.endpoints = {argc > 1 ? argv[1] : "127.0.0.1:9876"};
  options.topic = argc > 2 ? argv[2] : "TopicTest";
  options.group = argc > 3 ? argv[3] : "GroupTest";
  options.concurrency = 8;
  std::atomic<int> consumed{0};
  auto consumer = apogee::PushConsumer::Create(options, [&](const apogee::ReceivedMessage& m) {
    std::printf("%s (attempt %d) %s\n", m.message_id.c_str(), m.delivery_attempt, m.body.c_str());
    consumed++;
    return apogee::ConsumeResult::kSuccess;  // ack; kRetry redelivers later
  });
  if (!consumer.ok()) {
    std::fprintf(stderr, "%s\n", consumer.status().ToString().c_str());
    return 1;
  }
  absl::SleepFor(absl::Seconds(10));  // an example's lifetime, not a wait for a condition
  (*consumer)->Shutdown();
  std::printf("consumed %d\n", consumed.load());
  return 0;
}
