// Receives and acks messages until none arrives for one await period; with a
// fourth argument, only the messages an SQL92 filter matches, e.g.
// "TAGS = 'TagA' AND amount > 100" (the broker consumes the others past).
//   apogee-example-simple_consumer [nameserver=127.0.0.1:9876] [topic=TopicTest] [group=GroupTest]
//                                  [sql]
#include "apogee/simple_consumer.h"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  apogee::SimpleConsumerOptions options;
  options.endpoints = {argc > 1 ? argv[1] : "127.0.0.1:9876"};
  options.subscriptions[argc > 2 ? argv[2] : "TopicTest"] =
      argc > 4 ? apogee::FilterExpression::Sql(argv[4]) : apogee::FilterExpression("*");
  options.group = argc > 3 ? argv[3] : "GroupTest";
  options.await_duration = absl::Seconds(3);
  auto consumer = apogee::SimpleConsumer::Create(options);
  if (!consumer.ok()) {
    std::fprintf(stderr, "%s\n", consumer.status().ToString().c_str());
    return 1;
  }
  while (true) {
    auto messages = (*consumer)->Receive(16, absl::Seconds(30));
    if (!messages.ok()) {
      std::fprintf(stderr, "receive: %s\n", messages.status().ToString().c_str());
      return 1;
    }
    if (messages->empty()) break;
    for (const apogee::ReceivedMessage& m : *messages) {
      std::printf("%s [%s] %s\n", m.message_id.c_str(), m.tag.c_str(), m.body.c_str());
      if (absl::Status s = (*consumer)->Ack(m); !s.ok()) {
        std::fprintf(stderr, "ack: %s\n", s.ToString().c_str());
      }
    }
  }
  return 0;
}
