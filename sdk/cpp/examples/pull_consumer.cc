// Reads a topic from the beginning with a PullConsumer and commits.
//   apogee-example-pull_consumer [nameserver=127.0.0.1:9876] [topic=TopicTest] [group=PullGroup]
#include "apogee/pull_consumer.h"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  apogee::PullConsumerOptions options;
  options.endpoints = {argc > 1 ? argv[1] : "127.0.0.1:9876"};
  options.group = argc > 3 ? argv[3] : "PullGroup";
  auto consumer = apogee::PullConsumer::Create(options);
  if (!consumer.ok()) {
    std::fprintf(stderr, "%s\n", consumer.status().ToString().c_str());
    return 1;
  }
  if (absl::Status s = (*consumer)->Subscribe(argc > 2 ? argv[2] : "TopicTest"); !s.ok()) {
    std::fprintf(stderr, "subscribe: %s\n", s.ToString().c_str());
    return 1;
  }
  while (true) {
    auto messages = (*consumer)->Poll(absl::Seconds(2));
    if (!messages.ok()) {
      std::fprintf(stderr, "poll: %s\n", messages.status().ToString().c_str());
      return 1;
    }
    if (messages->empty()) break;
    for (const apogee::ReceivedMessage& m : *messages) {
      std::printf("queue %d offset %lld: %s\n", m.queue_id, static_cast<long long>(m.offset),
                  m.body.c_str());
    }
    if (absl::Status s = (*consumer)->Commit(); !s.ok()) {
      std::fprintf(stderr, "commit: %s\n", s.ToString().c_str());
    }
  }
  return (*consumer)->Shutdown().ok() ? 0 : 1;
}
