// Sends a few messages: sync, async and as a batch.
//   apogee-example-producer [nameserver=127.0.0.1:9876] [topic=TopicTest]
#include "apogee/producer.h"

#include <cstdio>
#include <string>

#include "absl/synchronization/blocking_counter.h"

int main(int argc, char** argv) {
  apogee::ProducerOptions options;
  options.endpoints = {argc > 1 ? argv[1] : "127.0.0.1:9876"};
  const std::string topic = argc > 2 ? argv[2] : "TopicTest";
  auto producer = apogee::Producer::Create(options);
  if (!producer.ok()) {
    std::fprintf(stderr, "%s\n", producer.status().ToString().c_str());
    return 1;
  }

  apogee::Message message;
  message.topic = topic;
  message.tag = "TagA";
  message.keys = {"order-1"};
  message.properties["source"] = "example";
  message.body = "hello, sync";
  auto receipt = (*producer)->Send(message);
  if (!receipt.ok()) {
    std::fprintf(stderr, "send: %s\n", receipt.status().ToString().c_str());
    return 1;
  }
  std::printf("sent %s to %s at offset %lld\n", receipt->message_id.c_str(),
              receipt->broker.c_str(), static_cast<long long>(receipt->offset));

  absl::BlockingCounter done(1);
  message.body = "hello, async";
  (*producer)->SendAsync(message, [&done](absl::StatusOr<apogee::SendReceipt> r) {
    std::printf("async: %s\n", r.ok() ? r->message_id.c_str() : r.status().ToString().c_str());
    done.DecrementCount();
  });
  done.Wait();

  std::vector<apogee::Message> batch(3, message);
  for (size_t i = 0; i < batch.size(); ++i) batch[i].body = "batch " + std::to_string(i);
  auto receipts = (*producer)->SendBatch(batch);
  std::printf("batch: %s\n", receipts.ok() ? "3 stored" : receipts.status().ToString().c_str());
  (*producer)->Shutdown();
  return receipts.ok() ? 0 : 1;
}
