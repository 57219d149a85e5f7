// End-to-end produce and consume over gRPC against real processes: an
// apogee-store (sync or async flush) and an apogee-broker started in a temp
// dir, driven with the RocketMQ v2 protocol. 1 KiB messages, single sends and
// batches; latency percentiles are reported as counters (microseconds).
// BM_PushEndToEnd / BM_LongPollEndToEnd compare push delivery with
// ReceiveMessage long polling: producer send time to consumer receipt.
//
//   build/tools/bench/apogee-broker-bench --benchmark_min_time=2
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/broker/v1/push.grpc.pb.h"
#include "benchmark/benchmark.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/testing/process.h"

#ifndef APOGEE_STORE_BIN
#error "APOGEE_STORE_BIN must name the apogee-store binary"
#endif
#ifndef APOGEE_BROKER_BIN
#error "APOGEE_BROKER_BIN must name the apogee-broker binary"
#endif

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
namespace pushv1 = ::apogee::broker::v1;
using testing::ServiceProcess;

// One store + broker pair per flush mode, shared by the benchmarks.
class Cluster {
 public:
  explicit Cluster(const std::string& flush) {
    auto store = ServiceProcess::Start("store", APOGEE_STORE_BIN,
                                       {absl::StrCat("--data_dir=", dir_.path(), "/data"),
                                        absl::StrCat("--listen=unix:", dir_.path(), "/store.sock"),
                                        absl::StrCat("--flush=", flush), "--metrics_listen="},
                                       dir_.path());
    if (!store.ok()) std::abort();
    store_ = std::move(store).value();
    auto broker = ServiceProcess::Start(
        "broker", APOGEE_BROKER_BIN,
        {"--nameservers=", absl::StrCat("--store=unix:", dir_.path(), "/store.sock"),
         "--metrics_listen=", "--worker_threads=8"},
        dir_.path());
    if (!broker.ok()) std::abort();
    broker_ = std::move(broker).value();
    channel_ = grpc::CreateChannel(broker_->address(), grpc::InsecureChannelCredentials());
    stub_ = v2::MessagingService::NewStub(channel_);
    push_ = pushv1::PushConsumer::NewStub(channel_);
    CreateTopic("Bench");
  }
  // Creates `name` with 8 queues.
  void CreateTopic(const std::string& name) {
    auto admin = admin::v1::Admin::NewStub(channel_);
    grpc::ClientContext context;
    admin::v1::CreateTopicRequest request;
    request.mutable_topic()->set_name(name);
    request.mutable_topic()->set_read_queues(8);
    request.mutable_topic()->set_write_queues(8);
    admin::v1::CreateTopicResponse response;
    if (!admin->CreateTopic(&context, request, &response).ok()) std::abort();
  }
  v2::MessagingService::Stub* stub() { return stub_.get(); }
  pushv1::PushConsumer::Stub* push() { return push_.get(); }

 private:
  testing::TempDir dir_;
  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<ServiceProcess> broker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v2::MessagingService::Stub> stub_;
  std::unique_ptr<pushv1::PushConsumer::Stub> push_;
};

// Created in main() before any benchmark thread, destroyed (processes
// killed) before main returns.
std::unique_ptr<Cluster> async_cluster;
std::unique_ptr<Cluster> sync_cluster;

Cluster& Get(const std::string& flush) { return flush == "sync" ? *sync_cluster : *async_cluster; }

void Percentiles(benchmark::State& state, std::vector<double>& micros) {
  if (micros.empty()) return;
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  // Each benchmark thread reports its own percentiles; show their mean.
  state.counters["p50_us"] = benchmark::Counter(at(0.50), benchmark::Counter::kAvgThreads);
  state.counters["p99_us"] = benchmark::Counter(at(0.99), benchmark::Counter::kAvgThreads);
  state.counters["p999_us"] = benchmark::Counter(at(0.999), benchmark::Counter::kAvgThreads);
}

// args: batch size, flush (0 async, 1 sync)
void BM_Produce(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Cluster& cluster = Get(state.range(1) ? "sync" : "async");
  const std::string body(1024, 'x');
  static std::atomic<int64_t> ids{0};
  std::vector<double> micros;
  int64_t messages = 0;
  for (auto _ : state) {
    v2::SendMessageRequest request;
    for (int i = 0; i < batch; ++i) {
      v2::Message* m = request.add_messages();
      m->mutable_topic()->set_name("Bench");
      m->mutable_system_properties()->set_message_id(absl::StrCat("bench-", ids++));
      m->set_body(body);
    }
    grpc::ClientContext context;
    context.AddMetadata("x-mq-client-id", "bench@1@0@x");
    v2::SendMessageResponse response;
    const absl::Time start = absl::Now();
    grpc::Status status = cluster.stub()->SendMessage(&context, request, &response);
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    if (!status.ok() || response.status().code() != v2::OK) {
      state.SkipWithError("send failed");
      break;
    }
    messages += batch;
  }
  state.SetItemsProcessed(messages);
  state.SetBytesProcessed(messages * 1024);
  Percentiles(state, micros);
}
BENCHMARK(BM_Produce)
    ->ArgNames({"batch", "sync"})
    ->Args({1, 0})
    ->Args({32, 0})
    ->Args({1, 1})
    ->Args({32, 1})
    ->UseRealTime()
    ->Threads(1)
    ->Threads(8);

// One ReceiveMessage (batch 32, 1 s long poll) of `topic` for `group`, then
// one AckMessage for everything received; `on_message` sees each message as
// it arrives. Returns how many were received.
int ReceiveBatchAndAck(Cluster& cluster, const std::string& group, const std::string& topic,
                       const std::function<void(const v2::Message&)>& on_message) {
  v2::ReceiveMessageRequest request;
  request.mutable_group()->set_name(group);
  request.mutable_message_queue()->mutable_topic()->set_name(topic);
  request.mutable_filter_expression()->set_expression("*");
  request.set_batch_size(32);
  request.mutable_invisible_duration()->set_seconds(60);
  request.mutable_long_polling_timeout()->set_seconds(1);
  grpc::ClientContext context;
  context.AddMetadata("x-mq-client-id", "bench@1@0@x");
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto reader = cluster.stub()->ReceiveMessage(&context, request);
  v2::ReceiveMessageResponse item;
  v2::AckMessageRequest ack;
  ack.mutable_group()->set_name(group);
  ack.mutable_topic()->set_name(topic);
  while (reader->Read(&item)) {
    if (!item.has_message()) continue;
    if (on_message) on_message(item.message());
    v2::AckMessageEntry* e = ack.add_entries();
    e->set_message_id(item.message().system_properties().message_id());
    e->set_receipt_handle(item.message().system_properties().receipt_handle());
  }
  reader->Finish();
  if (ack.entries_size() == 0) return 0;
  grpc::ClientContext ack_context;
  ack_context.AddMetadata("x-mq-client-id", "bench@1@0@x");
  v2::AckMessageResponse acked;
  cluster.stub()->AckMessage(&ack_context, ack, &acked);
  return ack.entries_size();
}

// Receives (batch 32) and acks what BM_Produce stored, from a fresh group.
void BM_ReceiveAndAck(benchmark::State& state) {
  Cluster& cluster = Get("async");
  static std::atomic<int> groups{0};
  const std::string group = absl::StrCat("bench-group-", groups++);
  std::vector<double> micros;
  int64_t messages = 0;
  for (auto _ : state) {
    const absl::Time start = absl::Now();
    const int received = ReceiveBatchAndAck(cluster, group, "Bench", nullptr);
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    if (received == 0) {
      state.SkipWithError("nothing left to receive; run BM_Produce first");
      break;
    }
    messages += received;
  }
  state.SetItemsProcessed(messages);
  state.SetBytesProcessed(messages * 1024);
  Percentiles(state, micros);
}
BENCHMARK(BM_ReceiveAndAck)->UseRealTime()->Iterations(300);

// A fresh topic per run, so nothing is left over between runs.
std::string NewTopic() {
  static std::atomic<int> topics{0};
  std::string name = absl::StrCat("PushBench", topics++);
  Get("async").CreateTopic(name);
  return name;
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

// End-to-end latencies seen by a consumer thread.
class Latencies {
 public:
  void Add(const std::string& sent_us) {
    int64_t sent;
    if (!absl::SimpleAtoi(sent_us, &sent)) return;
    absl::MutexLock lock(&mu_);
    micros_.push_back(static_cast<double>(NowMicros() - sent));
  }
  bool WaitFor(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return micros_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  void Report(benchmark::State& state) {
    absl::MutexLock lock(&mu_);
    if (micros_.empty()) return;
    std::sort(micros_.begin(), micros_.end());
    auto at = [&](double q) { return micros_[static_cast<size_t>(q * (micros_.size() - 1))]; };
    state.counters["e2e_p50_us"] = at(0.50);
    state.counters["e2e_p99_us"] = at(0.99);
    state.counters["e2e_max_us"] = micros_.back();
  }

 private:
  absl::Mutex mu_;
  std::vector<double> micros_ ABSL_GUARDED_BY(mu_);
};

// Runs the benchmark loop: each iteration sends `batch` 1 KiB messages
// stamped with their send time (property "sent_us"); then waits until the
// consumer got them all.
void Produce(benchmark::State& state, const std::string& topic, Latencies& latencies) {
  const int batch = static_cast<int>(state.range(0));
  const std::string body(1024, 'x');
  int64_t sent = 0;
  for (auto _ : state) {
    v2::SendMessageRequest request;
    const std::string now = absl::StrCat(NowMicros());
    for (int i = 0; i < batch; ++i) {
      v2::Message* m = request.add_messages();
      m->mutable_topic()->set_name(topic);
      m->mutable_system_properties()->set_message_id(absl::StrCat(topic, "-", sent + i));
      (*m->mutable_user_properties())["sent_us"] = now;
      m->set_body(body);
    }
    grpc::ClientContext context;
    context.AddMetadata("x-mq-client-id", "bench@1@0@x");
    v2::SendMessageResponse response;
    if (!Get("async").stub()->SendMessage(&context, request, &response).ok() ||
        response.status().code() != v2::OK) {
      state.SkipWithError("send failed");
      return;
    }
    sent += batch;
  }
  if (!latencies.WaitFor(static_cast<size_t>(sent), absl::Seconds(30))) {
    state.SkipWithError("the consumer did not get every message within 30 s");
  }
  state.SetItemsProcessed(sent);
  latencies.Report(state);
}

// One PushConsumer stream, 256 credits, one credit granted back per acked
// message. arg: messages per send.
void BM_PushEndToEnd(benchmark::State& state) {
  const std::string topic = NewTopic();
  Latencies latencies;
  grpc::ClientContext context;
  auto stream = Get("async").push()->Consume(&context);
  pushv1::ConsumeRequest subscribe;
  subscribe.mutable_subscribe()->set_client_id("bench@1@0@x");
  subscribe.mutable_subscribe()->set_group(absl::StrCat("push-", topic));
  subscribe.mutable_subscribe()->set_topic(topic);
  subscribe.mutable_subscribe()->set_initial_credits(256);
  stream->Write(subscribe);
  std::thread consumer([&] {
    pushv1::ConsumeResponse response;
    while (stream->Read(&response)) {
      const int n = response.deliveries().messages_size();
      if (n == 0) continue;
      pushv1::ConsumeRequest settle;
      for (const pushv1::PushedMessage& m : response.deliveries().messages()) {
        latencies.Add(m.message().properties().at("sent_us"));
        settle.mutable_settle()->add_acks(m.receipt_handle());
      }
      pushv1::ConsumeRequest credit;
      credit.mutable_credit()->set_messages(n);
      stream->Write(settle);
      stream->Write(credit);
    }
  });
  Produce(state, topic, latencies);
  context.TryCancel();
  consumer.join();
  stream->Finish();
}
BENCHMARK(BM_PushEndToEnd)->ArgName("batch")->Arg(1)->Arg(32)->UseRealTime();

// ReceiveMessage (batch 32, 1 s poll) + AckMessage in a loop. arg: messages
// per send.
void BM_LongPollEndToEnd(benchmark::State& state) {
  const std::string topic = NewTopic();
  const std::string group = absl::StrCat("poll-", topic);
  Latencies latencies;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop) {
      ReceiveBatchAndAck(Get("async"), group, topic, [&](const v2::Message& m) {
        latencies.Add(m.user_properties().at("sent_us"));
      });
    }
  });
  Produce(state, topic, latencies);
  stop = true;
  consumer.join();
}
BENCHMARK(BM_LongPollEndToEnd)->ArgName("batch")->Arg(1)->Arg(32)->UseRealTime();

}  // namespace
}  // namespace apogee

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  apogee::async_cluster = std::make_unique<apogee::Cluster>("async");
  apogee::sync_cluster = std::make_unique<apogee::Cluster>("sync");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  apogee::sync_cluster.reset();
  apogee::async_cluster.reset();
  return 0;
}
