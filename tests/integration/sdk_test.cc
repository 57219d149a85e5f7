// C++ SDK integration tests: the SDK against real apogee-nameserver,
// apogee-store and apogee-broker processes (LocalCluster) over 127.0.0.1.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/apogee.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"
#include "tests/integration/local_cluster.h"

namespace apogee {
namespace {

using ::apogee::testing::LocalCluster;
using ::apogee::testing::PollUntil;
using ::testing::HasSubstr;

class SdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = cluster_.Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  // Creates `topic` and waits until the NameServer routes it (the broker
  // registers it on its next heartbeat).
  void CreateTopic(const std::string& topic, int queues) {
    absl::Status created = cluster_.CreateTopic(topic, queues);
    ASSERT_TRUE(created.ok()) << created;
    WaitForRoute(topic, queues);
  }

  // Waits until the NameServer routes `queues` readable queues of `topic`.
  void WaitForRoute(const std::string& topic, int queues) {
    PullConsumerOptions options;
    options.endpoints = {cluster_.nameserver_address()};
    options.group = "route-probe";
    std::string seen;
    ASSERT_TRUE(PollUntil(
        [&] {
          // A fresh client each time: a client caches the routes it saw.
          auto probe = PullConsumer::Create(options);
          if (!probe.ok()) return false;
          auto queues_of = (*probe)->QueuesOf(topic);
          seen = queues_of.ok() ? absl::StrCat(queues_of->size(), " queues")
                                : queues_of.status().ToString();
          return queues_of.ok() && static_cast<int>(queues_of->size()) == queues;
        },
        absl::Seconds(15)))
        << "no route with " << queues << " queues for " << topic << " (last: " << seen << ")";
  }

  template <typename Options>
  Options With(Options options) {
    options.endpoints = {cluster_.nameserver_address()};
    return options;
  }

  std::unique_ptr<Producer> NewProducer(ProducerOptions options = {}) {
    auto producer = Producer::Create(With(options));
    EXPECT_TRUE(producer.ok()) << producer.status();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  std::unique_ptr<SimpleConsumer> NewSimpleConsumer(const std::string& group,
                                                    const std::string& topic,
                                                    const std::string& filter) {
    SimpleConsumerOptions options;
    options.group = group;
    options.subscriptions[topic] = filter;
    options.await_duration = absl::Seconds(2);
    auto consumer = SimpleConsumer::Create(With(options));
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    return consumer.ok() ? std::move(consumer).value() : nullptr;
  }

  static Message Msg(const std::string& topic, const std::string& body) {
    Message m;
    m.topic = topic;
    m.body = body;
    return m;
  }

  // A message with a tag, one key and a "color" property.
  static Message Tagged(const std::string& topic, const std::string& body, const std::string& tag,
                        const std::string& key, const std::string& color) {
    Message m = Msg(topic, body);
    m.tag = tag;
    m.keys = {key};
    m.properties["color"] = color;
    return m;
  }

  // Receives with `consumer` until `want` distinct bodies arrived, acking
  // each; bounded by `timeout`.
  static std::set<std::string> ReceiveAll(SimpleConsumer& consumer, size_t want,
                                          absl::Duration timeout = absl::Seconds(30)) {
    std::set<std::string> bodies;
    PollUntil(
        [&] {
          auto messages = consumer.Receive(32, absl::Seconds(20));
          EXPECT_TRUE(messages.ok()) << messages.status();
          if (!messages.ok()) return true;
          for (const ReceivedMessage& m : *messages) {
            bodies.insert(m.body);
            EXPECT_TRUE(consumer.Ack(m).ok());
          }
          return bodies.size() >= want;
        },
        timeout, absl::ZeroDuration());
    return bodies;
  }

  // One message (empty after 20 s).
  static std::vector<ReceivedMessage> ReceiveOne(SimpleConsumer& consumer) {
    std::vector<ReceivedMessage> got;
    PollUntil(
        [&] {
          auto r = consumer.Receive(1, absl::Seconds(30));
          if (r.ok()) got = *r;
          return !got.empty();
        },
        absl::Seconds(20), absl::ZeroDuration());
    return got;
  }

  LocalCluster cluster_{{APOGEE_NAMESERVER_BIN, APOGEE_STORE_BIN, APOGEE_BROKER_BIN}};
};

TEST_F(SdkTest, ProducesSyncAsyncAndBatchAndSimpleConsumerReceivesAll) {
  CreateTopic("SdkTopic", 4);
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);

  auto receipt = producer->Send(Tagged("SdkTopic", "sync", "TagA", "k1", "red"));
  ASSERT_TRUE(receipt.ok()) << receipt.status();
  EXPECT_EQ(receipt->message_id.size(), 32u);
  EXPECT_FALSE(receipt->broker.empty());

  std::atomic<int> ok{0}, failed{0};
  for (int i = 0; i < 20; ++i) {
    producer->SendAsync(Msg("SdkTopic", absl::StrCat("async-", i)),
                        [&](absl::StatusOr<SendReceipt> r) { (r.ok() ? ok : failed)++; });
  }
  std::vector<Message> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(Msg("SdkTopic", absl::StrCat("batch-", i)));
  auto receipts = producer->SendBatch(batch);
  ASSERT_TRUE(receipts.ok()) << receipts.status();
  EXPECT_EQ(receipts->size(), 5u);
  producer->Shutdown();  // waits for the async sends
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(failed.load(), 0);

  auto consumer = NewSimpleConsumer("SdkSimpleGroup", "SdkTopic", "*");
  ASSERT_NE(consumer, nullptr);
  std::set<std::string> bodies = ReceiveAll(*consumer, 26);
  EXPECT_EQ(bodies.size(), 26u);
  EXPECT_EQ(bodies.count("sync"), 1u);
  EXPECT_EQ(bodies.count("async-19"), 1u);
  EXPECT_EQ(bodies.count("batch-4"), 1u);
}

TEST_F(SdkTest, SimpleConsumerKeepsPropertiesAndRedeliversAfterChangeInvisible) {
  CreateTopic("SdkInvisible", 1);
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Tagged("SdkInvisible", "again", "TagB", "order-7", "blue")).ok());

  auto consumer = NewSimpleConsumer("SdkInvisibleGroup", "SdkInvisible", "TagB");
  ASSERT_NE(consumer, nullptr);
  std::vector<ReceivedMessage> got = ReceiveOne(*consumer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].tag, "TagB");
  EXPECT_EQ(got[0].keys, std::vector<std::string>{"order-7"});
  EXPECT_EQ(got[0].properties.at("color"), "blue");
  EXPECT_EQ(got[0].delivery_attempt, 1);

  // Visible again at once: the next receive gets it as attempt 2.
  ASSERT_TRUE(consumer->ChangeInvisibleDuration(&got[0], absl::ZeroDuration()).ok());
  std::vector<ReceivedMessage> again = ReceiveOne(*consumer);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message_id, got[0].message_id);
  EXPECT_EQ(again[0].delivery_attempt, 2);
  EXPECT_TRUE(consumer->Ack(again[0]).ok());
}

TEST_F(SdkTest, PullConsumerPollsCommitsAndSeeksToOffsetAndTime) {
  CreateTopic("SdkPull", 1);
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(producer->Send(Msg("SdkPull", absl::StrCat("m", i))).ok());
  }

  PullConsumerOptions options;
  options.group = "SdkPullGroup";
  auto created = PullConsumer::Create(With(options));
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<PullConsumer> consumer = std::move(created).value();
  ASSERT_TRUE(consumer->Subscribe("SdkPull").ok());
  std::vector<ReceivedMessage> all;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto r = consumer->Poll(absl::Seconds(1));
        EXPECT_TRUE(r.ok()) << r.status();
        if (r.ok()) all.insert(all.end(), r->begin(), r->end());
        return all.size() >= 10 || !r.ok();
      },
      absl::Seconds(20), absl::ZeroDuration()));
  ASSERT_EQ(all.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(all[i].body, absl::StrCat("m", i));
    EXPECT_EQ(all[i].offset, i);
  }
  const QueueId queue{"SdkPull", all[0].broker, all[0].queue_id};
  EXPECT_EQ(*consumer->Position(queue), 10);
  ASSERT_TRUE(consumer->Commit().ok());
  EXPECT_EQ(*consumer->Committed(queue), 10);

  // Seek to an offset.
  ASSERT_TRUE(consumer->Seek(queue, 3).ok());
  auto from3 = consumer->Poll(absl::Seconds(5));
  ASSERT_TRUE(from3.ok() && !from3->empty());
  EXPECT_EQ(from3->front().offset, 3);
  EXPECT_EQ(from3->front().body, "m3");

  // Seek to a time: the first message stored at or after m6's store time.
  const absl::Time t = all[6].store_time;
  int64_t expected = 0;
  while (all[expected].store_time < t) ++expected;
  ASSERT_TRUE(consumer->SeekToTime(t).ok());
  auto from_t = consumer->Poll(absl::Seconds(5));
  ASSERT_TRUE(from_t.ok() && !from_t->empty());
  EXPECT_EQ(from_t->front().offset, expected);

  // A new member of the group resumes from the committed offset.
  ASSERT_TRUE(consumer->Shutdown().ok());
  auto second = PullConsumer::Create(With(options));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*second)->Assign({queue}).ok());
  EXPECT_EQ(*(*second)->Position(queue), from_t->back().offset + 1);
}

// SIGSTOPs `pid` and waits until every thread of it is stopped: kill()
// returns before a thread running on another (virtual) CPU has stopped, and
// such a thread could still answer a request sent right after.
bool Freeze(pid_t pid) {
  if (kill(pid, SIGSTOP) != 0) return false;
  return PollUntil(
      [pid] {
        std::error_code ec;
        const std::string tasks = absl::StrCat("/proc/", pid, "/task");
        for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
          std::ifstream stat(task.path() / "stat");
          std::string line;
          std::getline(stat, line);
          // "<tid> (<comm>) <state> ...": the state follows the last ')'.
          const size_t paren = line.rfind(')');
          if (paren == std::string::npos || paren + 2 >= line.size()) return false;
          const char state = line[paren + 2];
          if (state != 'T' && state != 't') return false;
        }
        return !ec;
      },
      absl::Seconds(10), absl::Milliseconds(1));
}

// The broker's topics and their message counts (admin API).
std::map<std::string, int64_t> TopicCounts(const std::string& broker) {
  auto admin =
      admin::v1::Admin::NewStub(grpc::CreateChannel(broker, grpc::InsecureChannelCredentials()));
  auto context = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return c;
  };
  std::map<std::string, int64_t> counts;
  admin::v1::ListTopicsResponse topics;
  grpc::Status listed = admin->ListTopics(context().get(), {}, &topics);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  for (const auto& t : topics.topics()) {
    admin::v1::GetTopicStatsRequest request;
    request.set_name(t.name());
    admin::v1::GetTopicStatsResponse stats;
    grpc::Status got = admin->GetTopicStats(context().get(), request, &stats);
    EXPECT_TRUE(got.ok()) << t.name() << ": " << got.error_message();
    counts[t.name()] = stats.messages();
  }
  return counts;
}

// The group's progress on the topic's first queue (admin API).
admin::v1::QueueProgress FirstQueueProgress(const std::string& broker, const std::string& group,
                                            const std::string& topic) {
  auto admin =
      admin::v1::Admin::NewStub(grpc::CreateChannel(broker, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  admin::v1::GetGroupProgressRequest request;
  request.set_group(group);
  request.set_topic(topic);
  admin::v1::GetGroupProgressResponse progress;
  grpc::Status got = admin->GetGroupProgress(&context, request, &progress);
  EXPECT_TRUE(got.ok()) << got.error_message();
  return progress.queues_size() > 0 ? progress.queues(0) : admin::v1::QueueProgress();
}

// Every case fails in the SDK: the broker's topics and their counts do not
// change. The topics named are never created, and the broker auto-creates
// a topic on any send that reaches it (even one it then rejects), so a new
// topic would show that a send got through.
TEST_F(SdkTest, BadInputFailsBeforeAnythingIsSent) {
  CreateTopic("SdkBadInputExisting", 1);
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  const std::map<std::string, int64_t> before = TopicCounts(cluster_.broker_address());
  ASSERT_EQ(before.count("SdkBadInputExisting"), 1u);
  ASSERT_EQ(before.count("SdkBadInputEmpty"), 0u);
  auto nothing_sent = [&](const std::string& what) {
    EXPECT_EQ(TopicCounts(cluster_.broker_address()), before) << what << " reached the broker";
  };

  auto empty = producer->Send(Msg("SdkBadInputEmpty", ""));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("message.body is empty"));
  nothing_sent("empty body");
  auto existing = producer->Send(Msg("SdkBadInputExisting", ""));
  EXPECT_EQ(existing.status().code(), absl::StatusCode::kInvalidArgument);
  nothing_sent("empty body to an existing topic");
  auto bad_topic = producer->Send(Msg("bad topic", "x"));
  EXPECT_THAT(bad_topic.status().message(), HasSubstr("message.topic \"bad topic\""));
  nothing_sent("bad topic name");
  auto big = producer->Send(Msg("SdkBadInputBig", std::string(4 * 1024 * 1024 + 1, 'x')));
  EXPECT_THAT(big.status().message(), HasSubstr("(max 4194304)"));
  nothing_sent("body over 4 MiB");
  Message reserved = Msg("SdkBadInputReserved", "x");
  reserved.properties["KEYS"] = "k";
  EXPECT_THAT(producer->Send(reserved).status().message(), HasSubstr("\"KEYS\" is reserved"));
  nothing_sent("reserved property");
  // Five 4 MiB bodies pass each message's check but not the request cap the
  // broker would refuse before reading them through.
  std::vector<Message> heavy(5, Msg("SdkBadInputHeavy", std::string(4 * 1024 * 1024, 'x')));
  auto too_big = producer->SendBatch(heavy);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_big.status().message(), HasSubstr("(max_request_bytes 16777216)"));
  nothing_sent("batch over max_request_bytes");
  // SendAsync checks before its message joins a coalesced call.
  absl::Notification called;
  absl::Status async_status;
  producer->SendAsync(Msg("SdkBadInputAsync", ""), [&](absl::StatusOr<SendReceipt> r) {
    async_status = r.status();
    called.Notify();
  });
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(async_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(async_status.message(), HasSubstr("message.body is empty"));
  nothing_sent("async empty body");

  ProducerOptions tiny;
  tiny.endpoints = {"127.0.0.1:1"};
  tiny.max_request_bytes = 1024;
  EXPECT_THAT(Producer::Create(tiny).status().message(),
              HasSubstr("max_request_bytes is 1024 (allowed: 65536..1073741824)"));
  ProducerOptions no_batch = tiny;
  no_batch.max_request_bytes = 16 << 20;
  no_batch.max_batch_messages = 0;
  EXPECT_THAT(Producer::Create(no_batch).status().message(),
              HasSubstr("max_batch_messages is 0 (allowed: 1..4096)"));
}

TEST_F(SdkTest, SendToAStoppedBrokerFailsWithinTheTimeout) {
  CreateTopic("SdkFastFail", 2);
  ProducerOptions options;
  options.send_timeout = absl::Seconds(2);
  auto producer = NewProducer(options);
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Msg("SdkFastFail", "before")).ok());
  ASSERT_TRUE(cluster_.broker()->Stop(SIGKILL).ok());
  const absl::Time start = absl::Now();
  auto r = producer->Send(Msg("SdkFastFail", "after"));
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_LT(took, absl::Seconds(2) + absl::Milliseconds(500)) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("SdkFastFail"));
}

// Coalesced async sends: with one call in flight per topic and a long
// linger, 300 sends share few SendMessage calls, yet each callback gets its
// own message id and offset, and every message is stored exactly once.
TEST_F(SdkTest, CoalescedAsyncSendsAreAcknowledgedOneByOne) {
  CreateTopic("SdkCoalesced", 1);
  ProducerOptions options;
  options.max_batch_calls_in_flight = 1;
  options.linger = absl::Milliseconds(200);
  options.max_batch_messages = 64;
  auto producer = NewProducer(options);
  ASSERT_NE(producer, nullptr);
  absl::Mutex mu;
  std::vector<SendReceipt> receipts;
  int failed = 0;
  constexpr int kSends = 300;
  for (int i = 0; i < kSends; ++i) {
    producer->SendAsync(Msg("SdkCoalesced", absl::StrCat("c-", i)),
                        [&](absl::StatusOr<SendReceipt> r) {
                          absl::MutexLock lock(&mu);
                          if (r.ok()) {
                            receipts.push_back(*r);
                          } else {
                            ++failed;
                            ADD_FAILURE() << r.status();
                          }
                        });
  }
  producer->Shutdown();  // waits for every callback
  ASSERT_EQ(failed, 0);
  ASSERT_EQ(receipts.size(), static_cast<size_t>(kSends));
  std::set<std::string> ids;
  std::set<int64_t> offsets;
  for (const SendReceipt& r : receipts) {
    ids.insert(r.message_id);
    offsets.insert(r.offset);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kSends));
  // One queue: offsets 0..kSends-1, each given to one message.
  ASSERT_EQ(offsets.size(), static_cast<size_t>(kSends));
  EXPECT_EQ(*offsets.begin(), 0);
  EXPECT_EQ(*offsets.rbegin(), kSends - 1);
  auto consumer = NewSimpleConsumer("SdkCoalescedGroup", "SdkCoalesced", "*");
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(ReceiveAll(*consumer, kSends).size(), static_cast<size_t>(kSends));
}

// SendAsync holds no thread while the broker answers: with one callback
// thread and a frozen broker, eight sends time out together after one
// send_timeout, not one after another.
TEST_F(SdkTest, AsyncSendsToAFrozenBrokerTimeOutTogether) {
  CreateTopic("SdkAsyncFrozen", 1);
  ProducerOptions options;
  options.send_timeout = absl::Seconds(2);
  options.async_threads = 1;
  auto producer = NewProducer(options);
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Msg("SdkAsyncFrozen", "warm")).ok());  // route and channel ready

  ASSERT_TRUE(Freeze(cluster_.broker()->pid()));
  absl::Mutex mu;
  std::vector<absl::Status> results;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 8; ++i) {
    producer->SendAsync(Msg("SdkAsyncFrozen", absl::StrCat("frozen-", i)),
                        [&](absl::StatusOr<SendReceipt> r) {
                          absl::MutexLock lock(&mu);
                          results.push_back(r.status());
                        });
  }
  const bool all = PollUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return results.size() == 8;
      },
      absl::Seconds(30));
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(kill(cluster_.broker()->pid(), SIGCONT), 0);
  ASSERT_TRUE(all);
  EXPECT_LT(took, absl::Seconds(4));  // one after another took 6 s here
  absl::MutexLock lock(&mu);
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  }
}

// max_async_in_flight is backpressure: with the window full, SendAsync
// waits until a send in flight finishes.
TEST_F(SdkTest, AsyncSendWaitsForRoomInTheWindow) {
  CreateTopic("SdkAsyncWindow", 1);
  ProducerOptions options;
  options.send_timeout = absl::Seconds(2);
  options.max_async_in_flight = 4;
  auto producer = NewProducer(options);
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Msg("SdkAsyncWindow", "warm")).ok());

  ASSERT_TRUE(Freeze(cluster_.broker()->pid()));
  absl::Mutex mu;
  std::map<int, absl::Status> results;
  auto record = [&](int i) {
    return [&, i](absl::StatusOr<SendReceipt> r) {
      absl::MutexLock lock(&mu);
      results[i] = r.status();
    };
  };
  for (int i = 0; i < 4; ++i) producer->SendAsync(Msg("SdkAsyncWindow", "stuck"), record(i));
  const absl::Time start = absl::Now();
  producer->SendAsync(Msg("SdkAsyncWindow", "fifth"), record(4));  // waits for room
  const absl::Duration waited = absl::Now() - start;
  ASSERT_EQ(kill(cluster_.broker()->pid(), SIGCONT), 0);
  EXPECT_GE(waited, absl::Seconds(1));  // the first four hold the window until their timeout
  ASSERT_TRUE(PollUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return results.size() == 5;
      },
      absl::Seconds(30)));
  absl::MutexLock lock(&mu);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(results[i].code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(results[4].ok()) << results[4];
}

// Bodies a push consumer saw (thread-safe; the listener runs on many threads).
class Seen {
 public:
  ConsumeResult Record(const ReceivedMessage& m) {
    absl::MutexLock lock(&mu_);
    bodies_.insert(m.body);
    return ConsumeResult::kSuccess;
  }
  std::set<std::string> bodies() const {
    absl::MutexLock lock(&mu_);
    return bodies_;
  }

 private:
  mutable absl::Mutex mu_;
  std::set<std::string> bodies_;
};

// Two push consumers of one group ("member-a" recording into `a`, "member-b"
// into `b`), both connected, and `count` messages sent to the topic.
class PushPairTest : public SdkTest {
 protected:
  void StartPairAndSend(PushConsumerOptions options, int count) {
    CreateTopic(options.topic, 4);
    options = With(options);
    options.client_id = "member-a";
    auto first =
        PushConsumer::Create(options, [this](const ReceivedMessage& m) { return a_.Record(m); });
    ASSERT_TRUE(first.ok()) << first.status();
    first_ = std::move(first).value();
    options.client_id = "member-b";
    auto second =
        PushConsumer::Create(options, [this](const ReceivedMessage& m) { return b_.Record(m); });
    ASSERT_TRUE(second.ok()) << second.status();
    second_ = std::move(second).value();
    ASSERT_TRUE(PollUntil(
        [&] { return first_->ConnectedStreams() == 1 && second_->ConnectedStreams() == 1; },
        absl::Seconds(10)));
    auto producer = NewProducer();
    ASSERT_NE(producer, nullptr);
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(producer->Send(Msg(options.topic, absl::StrCat("m", i))).ok());
    }
  }

  Seen a_, b_;
  std::unique_ptr<PushConsumer> first_, second_;  // destroyed before a_, b_
};

TEST_F(PushPairTest, ClusteringMembersShareTheMessages) {
  PushConsumerOptions options;
  options.group = "SdkPushGroup";
  options.topic = "SdkPush";
  options.concurrency = 2;
  options.ack_timeout = absl::Seconds(10);
  ASSERT_NO_FATAL_FAILURE(StartPairAndSend(options, 40));
  std::set<std::string> all;
  ASSERT_TRUE(PollUntil(
      [&] {
        all = a_.bodies();
        for (const std::string& body : b_.bodies()) all.insert(body);
        return all.size() == 40;
      },
      absl::Seconds(20)))
      << all.size() << " of 40";
  // Four queues over two members: both get some.
  EXPECT_GT(a_.bodies().size(), 0u);
  EXPECT_GT(b_.bodies().size(), 0u);
  first_->Shutdown();
  second_->Shutdown();
}

TEST_F(PushPairTest, BroadcastingMembersEachGetEverything) {
  PushConsumerOptions options;
  options.group = "SdkBroadcastGroup";
  options.topic = "SdkBroadcast";
  options.mode = ConsumeMode::kBroadcasting;
  ASSERT_NO_FATAL_FAILURE(StartPairAndSend(options, 10));
  EXPECT_TRUE(PollUntil([&] { return a_.bodies().size() == 10 && b_.bodies().size() == 10; },
                        absl::Seconds(20)))
      << a_.bodies().size() << " and " << b_.bodies().size() << " of 10";
}

TEST_F(SdkTest, PushConsumerRetriesWhatTheListenerFailed) {
  CreateTopic("SdkNack", 1);
  PushConsumerOptions options = With(PushConsumerOptions{});
  options.group = "SdkNackGroup";
  options.topic = "SdkNack";
  absl::Mutex mu;
  std::vector<int> attempts;
  auto consumer = PushConsumer::Create(options, [&](const ReceivedMessage& m) {
    absl::MutexLock lock(&mu);
    attempts.push_back(m.delivery_attempt);
    return m.delivery_attempt == 1 ? ConsumeResult::kRetry : ConsumeResult::kSuccess;
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Msg("SdkNack", "fail once")).ok());
  EXPECT_TRUE(PollUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return attempts.size() >= 2;
      },
      absl::Seconds(30)));
  absl::MutexLock lock(&mu);
  ASSERT_GE(attempts.size(), 2u);
  EXPECT_EQ(attempts[0], 1);
  EXPECT_EQ(attempts[1], 2);
}

// A settlement waiting out settle_linger for company leaves when the linger
// ends, with nothing else to carry it: the one message is acknowledged (the
// group's offset moves past it, nothing in flight) while the consumer stays
// connected and idle.
TEST_F(SdkTest, ALingeringSettlementLeavesWhenItsLingerEnds) {
  CreateTopic("SdkLinger", 1);
  PushConsumerOptions options = With(PushConsumerOptions{});
  options.group = "SdkLingerGroup";
  options.topic = "SdkLinger";
  options.settle_linger = absl::Milliseconds(100);
  std::atomic<int> received{0};
  auto consumer = PushConsumer::Create(options, [&](const ReceivedMessage&) {
    received++;
    return ConsumeResult::kSuccess;
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Msg("SdkLinger", "alone")).ok());
  ASSERT_TRUE(PollUntil([&] { return received.load() == 1; }, absl::Seconds(30)));
  admin::v1::QueueProgress progress;
  EXPECT_TRUE(PollUntil(
      [&] {
        progress = FirstQueueProgress(cluster_.broker_address(), "SdkLingerGroup", "SdkLinger");
        return progress.committed_offset() == 1 && progress.in_flight() == 0;
      },
      absl::Seconds(30)))
      << progress.DebugString();
  EXPECT_EQ(received.load(), 1);
}

// A tag filter that skips a long run of other messages keeps scanning
// without waiting for an arrival or the park timeout between scan chunks
// (each read scans a bounded number of records).
TEST_F(SdkTest, PushConsumerFindsAMatchBehindManyFilteredMessages) {
  CreateTopic("SdkScan", 1);
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  std::vector<Message> others;
  for (int i = 0; i < 100; ++i) others.push_back(Tagged("SdkScan", "other", "B", "k", "red"));
  for (int round = 0; round < 60; ++round) ASSERT_TRUE(producer->SendBatch(others).ok());
  ASSERT_TRUE(producer->Send(Tagged("SdkScan", "wanted", "A", "k", "red")).ok());

  PushConsumerOptions options = With(PushConsumerOptions{});
  options.group = "SdkScanGroup";
  options.topic = "SdkScan";
  options.filter = "A";
  Seen seen;
  const absl::Time start = absl::Now();
  auto consumer =
      PushConsumer::Create(options, [&](const ReceivedMessage& m) { return seen.Record(m); });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE(PollUntil([&] { return seen.bodies().count("wanted") == 1; }, absl::Seconds(30)));
  // 6000 filtered records are ~6 scan chunks; parking between chunks took
  // ~5 s each before.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(seen.bodies().count("other"), 0u);
}

// The same for long polling: one ReceiveMessage scans on instead of waiting
// for its deadline after each chunk (2 s per chunk before).
TEST_F(SdkTest, SimpleConsumerFindsAMatchBehindManyFilteredMessages) {
  CreateTopic("SdkScanSimple", 1);
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  std::vector<Message> others;
  for (int i = 0; i < 100; ++i) {
    others.push_back(Tagged("SdkScanSimple", "other", "B", "k", "red"));
  }
  for (int round = 0; round < 60; ++round) ASSERT_TRUE(producer->SendBatch(others).ok());
  ASSERT_TRUE(producer->Send(Tagged("SdkScanSimple", "wanted", "A", "k", "red")).ok());

  auto consumer = NewSimpleConsumer("SdkScanSimpleGroup", "SdkScanSimple", "A");
  ASSERT_NE(consumer, nullptr);
  const absl::Time start = absl::Now();
  std::vector<ReceivedMessage> got = ReceiveOne(*consumer);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "wanted");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// A subscription every broker refuses fails Create with the broker's reason
// instead of being retried in the background forever.
TEST_F(SdkTest, PushConsumerCreateFailsWhenTheBrokerRejectsTheSubscription) {
  CreateTopic("SdkRejected", 1);
  PushConsumerOptions options = With(PushConsumerOptions{});
  options.group = "SdkRejectedGroup";
  options.topic = "SdkRejected";
  options.filter = "TagA||";
  auto consumer =
      PushConsumer::Create(options, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(consumer.status().message(), HasSubstr("rejected the subscription"));
  EXPECT_THAT(consumer.status().message(), HasSubstr("has an empty tag"));

  options.filter = "TagA";  // the same consumer with a valid filter starts
  consumer =
      PushConsumer::Create(options, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  EXPECT_EQ((*consumer)->ConnectedStreams(), 1);
}

TEST_F(SdkTest, PushConsumerReconnectsAfterABrokerRestart) {
  CreateTopic("SdkReconnect", 1);
  PushConsumerOptions options = With(PushConsumerOptions{});
  options.group = "SdkReconnectGroup";
  options.topic = "SdkReconnect";
  options.route_refresh = absl::Milliseconds(200);  // exercises the route watcher too
  Seen seen;
  auto consumer =
      PushConsumer::Create(options, [&](const ReceivedMessage& m) { return seen.Record(m); });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_TRUE(producer->Send(Msg("SdkReconnect", "before")).ok());
  ASSERT_TRUE(PollUntil([&] { return seen.bodies().count("before") == 1; }, absl::Seconds(20)));

  ASSERT_TRUE(cluster_.RestartBroker().ok());
  ASSERT_TRUE(PollUntil([&] { return (*consumer)->ConnectedStreams() == 1; }, absl::Seconds(20)));
  // The producer may need a retry while its channel reconnects.
  ASSERT_TRUE(PollUntil([&] { return producer->Send(Msg("SdkReconnect", "after")).ok(); },
                        absl::Seconds(20)));
  EXPECT_TRUE(PollUntil([&] { return seen.bodies().count("after") == 1; }, absl::Seconds(20)));
}

// Two broker groups (each its own store) behind one NameServer, the topic on
// both: what one broker's death does to the clients.
class TwoBrokerTest : public SdkTest {
 protected:
  void SetUp() override {
    SdkTest::SetUp();
    auto added = cluster_.AddBroker("broker-b");
    ASSERT_TRUE(added.ok()) << added.status();
  }

  // Creates `topic` with `queues` queues on each broker and waits for the
  // NameServer to route all of them.
  void CreateOnBoth(const std::string& topic, int queues) {
    ASSERT_TRUE(cluster_.CreateTopic(topic, queues, 0).ok());
    ASSERT_TRUE(cluster_.CreateTopic(topic, queues, 1).ok());
    WaitForRoute(topic, 2 * queues);
  }
};

TEST_F(TwoBrokerTest, ProducerUsesBothBrokersAndFailsOverWhenOneDies) {
  ASSERT_NO_FATAL_FAILURE(CreateOnBoth("TwoSend", 2));
  ProducerOptions options;
  options.send_timeout = absl::Seconds(3);
  auto producer = NewProducer(options);
  ASSERT_NE(producer, nullptr);
  std::map<std::string, int> per_broker;
  for (int i = 0; i < 8; ++i) {
    auto r = producer->Send(Msg("TwoSend", absl::StrCat("before-", i)));
    ASSERT_TRUE(r.ok()) << r.status();
    per_broker[r->broker]++;
  }
  EXPECT_EQ(per_broker["broker-a"], 4);  // round robin over the four queues
  EXPECT_EQ(per_broker["broker-b"], 4);

  ASSERT_TRUE(cluster_.broker(1)->Stop(SIGKILL).ok());
  per_broker.clear();
  for (int i = 0; i < 8; ++i) {
    auto r = producer->Send(Msg("TwoSend", absl::StrCat("after-", i)));
    ASSERT_TRUE(r.ok()) << "send " << i << " after broker-b died: " << r.status();
    per_broker[r->broker]++;
  }
  EXPECT_EQ(per_broker["broker-a"], 8);
}

// A message group goes to one broker every time (its order holds there);
// the sends that could not keep it are refused before any I/O.
TEST_F(TwoBrokerTest, FifoMessagesOfAGroupStayOnOneBroker) {
  ASSERT_NO_FATAL_FAILURE(CreateOnBoth("TwoFifo", 2));
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  std::map<std::string, std::set<std::string>> brokers_of;  // group -> brokers
  std::set<std::string> used;
  for (int round = 0; round < 3; ++round) {
    for (int g = 0; g < 5; ++g) {  // not a multiple of the 4 queues: round-robin would move it
      Message m = Msg("TwoFifo", absl::StrCat(g, ":", round));
      m.message_group = absl::StrCat("order-", g);
      auto r = producer->Send(m);
      ASSERT_TRUE(r.ok()) << r.status();
      brokers_of[m.message_group].insert(r->broker);
      used.insert(r->broker);
    }
  }
  for (const auto& [group, brokers] : brokers_of) {
    EXPECT_EQ(brokers.size(), 1u) << group << " went to " << absl::StrJoin(brokers, ", ");
  }
  EXPECT_EQ(used.size(), 2u) << "groups spread over both brokers";

  Message a = Msg("TwoFifo", "a"), b = Msg("TwoFifo", "b");
  a.message_group = "order-a";
  b.message_group = "order-b";
  EXPECT_THAT(producer->SendBatch({a, b}).status().message(),
              HasSubstr("messages[1].message_group is \"order-b\" but a batch has one"));
  absl::Notification done;
  absl::Status async;
  producer->SendAsync(a, [&](absl::StatusOr<SendReceipt> r) {
    async = r.status();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(async.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(async.message(), HasSubstr("use Send or SendBatch"));
}

TEST_F(TwoBrokerTest, PullConsumerKeepsPollingTheLiveBrokerWhenTheOtherDies) {
  ASSERT_NO_FATAL_FAILURE(CreateOnBoth("TwoPull", 2));
  auto producer = NewProducer();
  ASSERT_NE(producer, nullptr);
  PullConsumerOptions options;
  options.group = "TwoPullGroup";
  auto created = PullConsumer::Create(With(options));
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<PullConsumer> consumer = std::move(created).value();
  ASSERT_TRUE(consumer->Subscribe("TwoPull").ok());

  // Polls until `want` bodies starting with `prefix` arrived; every Poll
  // must succeed.
  auto receive = [&](const std::string& prefix, size_t want) {
    std::set<std::string> bodies;
    PollUntil(
        [&] {
          auto r = consumer->Poll(absl::Milliseconds(500));
          EXPECT_TRUE(r.ok()) << r.status();
          if (!r.ok()) return true;
          for (const ReceivedMessage& m : *r) {
            if (absl::StartsWith(m.body, prefix)) bodies.insert(m.body);
          }
          return bodies.size() >= want;
        },
        absl::Seconds(20), absl::ZeroDuration());
    return bodies.size();
  };
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(producer->Send(Msg("TwoPull", absl::StrCat("before-", i))).ok());
  }
  EXPECT_EQ(receive("before-", 8), 8u);

  ASSERT_TRUE(cluster_.broker(1)->Stop(SIGKILL).ok());
  for (int i = 0; i < 3; ++i) {  // nothing to read: every queue is tried
    auto idle = consumer->Poll(absl::Milliseconds(100));
    ASSERT_TRUE(idle.ok()) << idle.status();
    EXPECT_TRUE(idle->empty());
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(producer->Send(Msg("TwoPull", absl::StrCat("after-", i))).ok());
  }
  EXPECT_EQ(receive("after-", 8), 8u);
  // Commit stores what it can (broker-a) and names the queue it could not.
  const absl::Status committed = consumer->Commit();
  EXPECT_FALSE(committed.ok());
  EXPECT_THAT(committed.message(), HasSubstr("broker-b"));
  EXPECT_EQ(*consumer->Committed({"TwoPull", "broker-a", 0}),
            *consumer->Position({"TwoPull", "broker-a", 0}));
}

// Prefetch below the callback concurrency could never keep every callback
// busy; it is refused before anything connects.
TEST(PushConsumerOptionsTest, PrefetchBelowConcurrencyIsRefusedNamingTheLimit) {
  PushConsumerOptions options;
  options.endpoints = {"127.0.0.1:1"};
  options.group = "G";
  options.topic = "T";
  options.concurrency = 8;
  options.prefetch = 4;
  auto consumer =
      PushConsumer::Create(options, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(consumer.status().message(), HasSubstr("prefetch is 4 (allowed: 0 or 8..10000"));
}

// A settle linger outside 0..100ms is refused before anything connects.
TEST(PushConsumerOptionsTest, SettleLingerOutsideItsRangeIsRefusedNamingTheLimit) {
  for (const absl::Duration linger : {absl::Milliseconds(101), absl::Milliseconds(-1)}) {
    PushConsumerOptions options;
    options.endpoints = {"127.0.0.1:1"};
    options.group = "G";
    options.topic = "T";
    options.settle_linger = linger;
    auto consumer = PushConsumer::Create(
        options, [](const ReceivedMessage&) { return ConsumeResult::kSuccess; });
    ASSERT_FALSE(consumer.ok()) << linger;
    EXPECT_EQ(consumer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(consumer.status().message(),
                HasSubstr(absl::StrCat("settle_linger is ", absl::FormatDuration(linger),
                                       " (allowed: 0..100ms)")));
  }
}

// A loop on Receive or Poll while the only broker is down: each call fails,
// but the calls back off (Receive: 100 ms, 200 ms, ...; Poll waits out its
// timeout while every queue rests) instead of spinning thousands of times.
TEST_F(SdkTest, ReceiveAndPollLoopsBackOffWhileTheBrokerIsDown) {
  CreateTopic("SdkBrokerDown", 2);
  auto simple = NewSimpleConsumer("SdkBrokerDownGroup", "SdkBrokerDown", "*");
  ASSERT_NE(simple, nullptr);
  PullConsumerOptions pull_options = With(PullConsumerOptions{});
  pull_options.group = "SdkBrokerDownPull";
  auto pull = PullConsumer::Create(pull_options);
  ASSERT_TRUE(pull.ok()) << pull.status();
  ASSERT_TRUE((*pull)->Subscribe("SdkBrokerDown").ok());
  ASSERT_TRUE(cluster_.broker()->Stop(SIGKILL).ok());

  // Calls of `call` in 2 s; each must fail.
  auto calls_in_2s = [](auto call) {
    int calls = 0;
    for (const absl::Time end = absl::Now() + absl::Seconds(2); absl::Now() < end; ++calls) {
      EXPECT_FALSE(call().ok());
    }
    return calls;
  };
  // Waits of 0, 100, 200, 400 and 800 ms: the 6th call starts at 1.5 s and
  // waits until 3.1 s. A slow machine makes fewer calls, never more.
  EXPECT_LE(calls_in_2s([&] { return simple->Receive(32, absl::Seconds(20)); }), 6);
  // 200 ms each, except the tries of the broker's queues (at 0 s, again
  // after their 1 s rest), which fail at once: about 12. Spinning would be
  // thousands.
  EXPECT_LE(calls_in_2s([&] { return (*pull)->Poll(absl::Milliseconds(200)); }), 15);
}

// The NameServer SIGKILLed for several route refresh intervals while a
// producer and a SimpleConsumer run against the healthy broker, then
// restarted with an empty registry (until the broker registers again): the
// clients keep their last good routes, so no send and no receive fails.
// Paced by the messages themselves: each send waits until the consumer
// received it.
TEST_F(SdkTest, NameServerOutageAndEmptyRestartFailNoSendOrReceive) {
  const std::string topic = "SdkNsOutage";
  CreateTopic(topic, 2);
  const absl::Duration refresh = absl::Seconds(1);
  ProducerOptions producer_options;
  producer_options.route_refresh = refresh;
  auto producer = NewProducer(producer_options);
  ASSERT_NE(producer, nullptr);
  SimpleConsumerOptions consumer_options = With(SimpleConsumerOptions{});
  consumer_options.group = "SdkNsOutageGroup";
  consumer_options.subscriptions[topic] = "*";
  consumer_options.await_duration = absl::Milliseconds(500);
  consumer_options.route_refresh = refresh;
  auto created = SimpleConsumer::Create(consumer_options);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<SimpleConsumer> consumer = std::move(created).value();

  absl::Mutex mu;
  std::set<std::string> received;
  int error_count = 0;              // failed sends, receives and acks
  std::vector<std::string> errors;  // the first few of them
  auto record = [&](std::string error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (error_count++ < 5) errors.push_back(std::move(error));
  };
  std::atomic<bool> stop{false};
  std::atomic<int> receives{0};
  std::thread receiver([&] {
    while (!stop.load()) {
      auto messages = consumer->Receive(32, absl::Seconds(20));
      receives++;
      absl::MutexLock lock(&mu);
      if (!messages.ok()) {
        record(absl::StrCat("receive: ", messages.status().ToString()));
        continue;
      }
      for (const ReceivedMessage& m : *messages) received.insert(m.body);
      if (absl::Status acked = consumer->Ack(*messages); !acked.ok()) {
        record(absl::StrCat("ack: ", acked.ToString()));
      }
    }
  });
  int sent = 0;
  // Sends one message at a time, each after the last was received, until
  // `done` holds; false when a message did not arrive within 10 s.
  auto send_until = [&](auto done) {
    while (!done()) {
      const std::string body = absl::StrCat("m-", sent++);
      auto receipt = producer->Send(Msg(topic, body));
      if (!receipt.ok()) {
        absl::MutexLock lock(&mu);
        record(absl::StrCat("send ", body, ": ", receipt.status().ToString()));
        continue;
      }
      if (!PollUntil(
              [&] {
                absl::MutexLock lock(&mu);
                return received.count(body) == 1;
              },
              absl::Seconds(10), absl::Milliseconds(5))) {
        return false;
      }
    }
    return true;
  };
  auto for_refreshes = [&](int n) {
    const absl::Time end = absl::Now() + n * refresh;
    return [end] { return absl::Now() >= end; };
  };

  ASSERT_TRUE(send_until([&] { return sent >= 10; }));
  ASSERT_TRUE(cluster_.nameserver()->Stop(SIGKILL).ok());
  // Every route goes stale and its refreshes fail (and back off).
  const int before_outage = sent;
  EXPECT_TRUE(send_until(for_refreshes(4))) << "a message sent during the outage never arrived";
  EXPECT_GT(sent - before_outage, 10);

  ASSERT_TRUE(cluster_.nameserver()->Restart(/*same_port=*/true).ok());
  // Empty until the broker registers again; refreshes see that first.
  PullConsumerOptions probe_options = With(PullConsumerOptions{});
  probe_options.group = "route-probe";
  auto routed = [&] {
    auto probe = PullConsumer::Create(probe_options);  // fresh: no cached route
    return probe.ok() && (*probe)->QueuesOf(topic).ok();
  };
  const absl::Time restarted = absl::Now();
  EXPECT_TRUE(send_until([&] { return routed() || absl::Now() - restarted > absl::Seconds(20); }))
      << "a message sent after the NameServer restart never arrived";
  const bool registered_again = routed();
  EXPECT_TRUE(registered_again) << "the broker did not register again within 20 s; broker log:\n"
                                << cluster_.broker()->LogTail();
  if (registered_again) {
    EXPECT_TRUE(send_until(for_refreshes(3)))
        << "a message sent after re-registration never arrived";
  }

  stop = true;
  receiver.join();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(error_count, 0) << "first errors: " << absl::StrJoin(errors, "; ");
  EXPECT_EQ(received.size(), static_cast<size_t>(sent));
  std::fprintf(stderr, "sent %d messages, %d receive calls\n", sent, receives.load());
}

}  // namespace
}  // namespace apogee
