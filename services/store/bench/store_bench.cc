// Store throughput benchmarks (Google Benchmark), recorded in
// docs/benchmarks.md:
//  - BM_Timers: delayed messages scheduled and fired per second;
//  - BM_EngineAppend: Store::Append of 1 KiB records in-process, async and
//    sync flush, batch 1 and 64, 1 or more appending threads;
//  - BM_EngineRead: Store::Read of 1 KiB records (page cache) in-process;
//  - BM_GrpcAppend: the same appends through apogee.store.v1 over a unix
//    socket: an in-process StoreService + GrpcServer, one pipelined Append
//    stream keeping `window` batches in flight (what the broker does).
// Data goes to a fresh directory under $APOGEE_BENCH_DIR (default /tmp),
// removed after each run. Counters: items_per_second = acknowledged records/s;
// indexed_per_s = records/s including the wait until the indexes caught up;
// syncs_per_s and records_per_sync show group commit in sync mode.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "benchmark/benchmark.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/registry.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/server/grpc_server.h"
#include "services/store/engine/store.h"
#include "services/store/metrics/probe.h"
#include "services/store/service/record_codec.h"
#include "services/store/service/store_service.h"
#include "services/store/typed/timer_service.h"

namespace apogee::store {
namespace {

constexpr char kTopic[] = "Bench";
constexpr int kQueues = 8;
constexpr size_t kBodySize = 1024;

std::string BenchRoot() {
  const char* dir = getenv("APOGEE_BENCH_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp";
}

// A fresh directory, removed on destruction.
class BenchDir {
 public:
  BenchDir() {
    std::string pattern = BenchRoot() + "/apogee-bench-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<Store> OpenStore(const std::string& dir, FlushMode mode,
                                 uint32_t max_body_size = 4u << 20, const Clock* clock = nullptr) {
  StoreOptions options;
  options.clock = clock;
  options.data_dir = dir + "/data";
  options.segment_size = int64_t{256} << 20;
  options.max_body_size = max_body_size;
  options.flush_mode = mode;
  options.flush_interval = absl::Milliseconds(500);  // the production default (async)
  options.retention.check_interval = absl::ZeroDuration();
  auto store = Store::Create(options);
  if (!store.ok()) {
    std::fprintf(stderr, "Store::Create: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  if (!(*store)->PutTopic({kTopic, kQueues, ""}).ok()) std::abort();
  return std::move(store).value();
}

std::string Body(int i) {
  std::string body = absl::StrCat("body-", i, "-");
  body.resize(kBodySize, 'x');
  return body;
}

// Message ids shaped like the SDK's (sdk/cpp/src/convert.cc): a per-producer
// prefix, then a counter, so every record has its own id and one producer's
// ids ascend, as the msg_id index sees them in production. Renumber writes
// the next counter values into the ids in place (cheap enough for the loop).
std::string MessageId(int producer) { return absl::StrFormat("01%08X%022X", producer, 0); }

void Renumber(std::string* id, uint64_t* sequence) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  uint64_t n = (*sequence)++;
  for (size_t i = id->size(); i > id->size() - 16; --i, n >>= 4) (*id)[i - 1] = kHex[n & 0xf];
}

std::vector<RecordInput> EngineBatch(int thread, int size) {
  std::vector<RecordInput> batch;
  for (int i = 0; i < size; ++i) {
    RecordInput r;
    r.topic = kTopic;
    r.queue_id = thread % kQueues;
    r.message_id = MessageId(thread);
    r.tags_hash = 42;
    r.born_timestamp_ms = 1'700'000'000'000;
    r.body = Body(i);
    batch.push_back(std::move(r));
  }
  return batch;
}

// Sets the shared counters of an append run. `start` is when the loop
// began; waits for the indexes to catch up to report indexed_per_s.
void ReportAppend(benchmark::State& state, Store* store, int64_t records,
                  const CommitLogStats& before, absl::Time start) {
  const absl::Duration loop = absl::Now() - start;
  store->WaitForDispatch(store->GetLogOffsets().committed, absl::Minutes(2));
  const absl::Duration indexed = absl::Now() - start;
  const StoreStats stats = store->Stats();
  const int64_t groups = stats.log.group_commits - before.group_commits;
  const int64_t syncs = stats.log.syncs - before.syncs;
  state.counters["indexed_per_s"] = static_cast<double>(records) / absl::ToDoubleSeconds(indexed);
  state.counters["groups_per_s"] = static_cast<double>(groups) / absl::ToDoubleSeconds(loop);
  state.counters["records_per_group"] =
      groups > 0 ? static_cast<double>(records) / static_cast<double>(groups) : 0;
  if (syncs > 0) {
    state.counters["syncs_per_s"] = static_cast<double>(syncs) / absl::ToDoubleSeconds(loop);
    state.counters["records_per_sync"] = static_cast<double>(records) / static_cast<double>(syncs);
  }
}

// Args: {sync (0/1), batch}. Threads share one store.
void BM_EngineAppend(benchmark::State& state) {
  static BenchDir* dir = nullptr;
  static Store* store = nullptr;
  static CommitLogStats before;
  static absl::Time start;
  const FlushMode mode = state.range(0) != 0 ? FlushMode::kSync : FlushMode::kAsync;
  const int batch_size = static_cast<int>(state.range(1));
  if (state.thread_index() == 0) {
    dir = new BenchDir();
    store = OpenStore(dir->path(), mode).release();
    before = store->Stats().log;
  }
  std::vector<RecordInput> batch = EngineBatch(state.thread_index(), batch_size);
  uint64_t sequence = 0;
  bool first = true;
  for (auto _ : state) {
    if (first && state.thread_index() == 0) start = absl::Now();
    first = false;
    for (RecordInput& r : batch) Renumber(&r.message_id, &sequence);
    auto result = store->Append(batch);
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
  state.SetBytesProcessed(state.iterations() * batch_size * static_cast<int64_t>(kBodySize));
  if (state.thread_index() == 0) {
    // Every thread has left the loop (Google Benchmark joins them there).
    const int64_t records = store->Stats().log.appended_records;
    ReportAppend(state, store, records, before, start);
    delete store;
    delete dir;
  }
}

// Arg: max_messages per Read. Reads one queue of 200k pre-written records
// round and round (from the page cache).
void BM_EngineRead(benchmark::State& state) {
  constexpr int kRecords = 200'000;
  BenchDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.path(), FlushMode::kAsync);
  const std::vector<RecordInput> batch = EngineBatch(0, 256);
  for (int i = 0; i < kRecords / 256; ++i) {
    if (!store->Append(batch).ok()) std::abort();
  }
  store->WaitForDispatch(store->GetLogOffsets().committed, absl::Minutes(2));
  const int64_t end = (kRecords / 256) * 256;
  ReadRequest read;
  read.topic = kTopic;
  read.queue_id = 0;
  read.max_messages = static_cast<int>(state.range(0));
  read.max_bytes = int64_t{64} << 20;
  int64_t records = 0;
  for (auto _ : state) {
    auto result = store->Read(read);
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      break;
    }
    records += static_cast<int64_t>(result->records.size());
    benchmark::DoNotOptimize(result->records.data());
    read.offset = result->next_offset >= end ? 0 : result->next_offset;
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * static_cast<int64_t>(kBodySize));
}

// The gRPC side: an in-process StoreService on a unix socket.
struct GrpcFixture {
  explicit GrpcFixture(FlushMode mode)
      : store(OpenStore(dir.path(), mode, EngineBodyLimit(4u << 20))),
        executor(4),
        probe(std::make_shared<prometheus::Registry>()),
        service(store.get(), &executor, &probe, ServiceOptions(dir.path())) {
    GrpcServerOptions options;
    options.listen = absl::StrCat("unix:", dir.path(), "/bench.sock");
    auto started = GrpcServer::Start(options, {&service});
    if (!started.ok()) std::abort();
    server = std::move(started).value();
    stub = sv1::Store::NewStub(
        grpc::CreateChannel(server->bound_address(), grpc::InsecureChannelCredentials()));
  }
  ~GrpcFixture() {
    server->Shutdown(absl::ZeroDuration());
    server.reset();
  }
  static StoreServiceOptions ServiceOptions(const std::string& dir) {
    StoreServiceOptions o;
    o.data_dir = dir;
    return o;
  }

  BenchDir dir;
  std::unique_ptr<Store> store;
  Executor executor;
  Probe probe;
  StoreService service;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<sv1::Store::Stub> stub;
};

// Args: {sync (0/1), batch, window}. One iteration = one batch written on a
// pipelined stream with at most `window` batches unanswered.
void BM_GrpcAppend(benchmark::State& state) {
  const FlushMode mode = state.range(0) != 0 ? FlushMode::kSync : FlushMode::kAsync;
  const int batch_size = static_cast<int>(state.range(1));
  const int window = static_cast<int>(state.range(2));
  GrpcFixture fixture(mode);
  const CommitLogStats before = fixture.store->Stats().log;

  sv1::AppendRequest request;
  for (int i = 0; i < batch_size; ++i) {
    sv1::AppendRecord* r = request.add_records();
    r->set_topic(kTopic);
    r->set_queue_id(i % kQueues);
    r->set_message_id(MessageId(0));
    r->set_tag("TagA");
    r->set_body(Body(i));
  }

  grpc::ClientContext context;
  auto stream = fixture.stub->Append(&context);
  absl::Mutex mu;
  int64_t written = 0;
  int64_t answered = 0;
  int64_t failed = 0;
  bool broken = false;
  std::thread reader([&] {
    sv1::AppendResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      ++answered;
      if (response.code() != 0) ++failed;
    }
    absl::MutexLock lock(&mu);
    broken = true;
  });
  uint64_t sequence = 0;
  const absl::Time start = absl::Now();
  for (auto _ : state) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
        return broken || written - answered < window;
      };
      mu.Await(absl::Condition(&room));
      if (broken) {
        state.SkipWithError("append stream broke");
        break;
      }
      ++written;
    }
    for (sv1::AppendRecord& r : *request.mutable_records()) {
      Renumber(r.mutable_message_id(), &sequence);
    }
    request.set_request_id(static_cast<uint64_t>(written));
    stream->Write(request);
  }
  // The timed loop ends with up to `window` batches unanswered: acked_per_s
  // (records / time until the last answer) is the number to quote.
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return broken || answered == written; };
    mu.Await(absl::Condition(&all));
  }
  const absl::Duration acked = absl::Now() - start;
  stream->WritesDone();
  reader.join();
  stream->Finish().IgnoreError();
  if (failed > 0) state.SkipWithError("some appends failed");
  const int64_t records = state.iterations() * batch_size;
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * static_cast<int64_t>(kBodySize));
  state.counters["acked_per_s"] = static_cast<double>(records) / absl::ToDoubleSeconds(acked);
  ReportAppend(state, fixture.store.get(), records, before, start);
}

// Delayed messages: `timers` TIMER records of 1 KiB scheduled in batches of
// 64 (scheduled_per_s, until indexed), then all made due at once with a
// manual clock and fired by TimerService passes of 1000 (fired_per_s, until
// the copies are indexed). Noisy on a shared machine.
void BM_Timers(benchmark::State& state) {
  const int timers = static_cast<int>(state.range(0));
  double scheduled_seconds = 0, fired_seconds = 0;
  int64_t total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    BenchDir dir;
    ManualClock clock(absl::Now());
    std::unique_ptr<Store> store = OpenStore(dir.path(), FlushMode::kAsync, 4u << 20, &clock);
    TimerService service(store.get(), &clock, TimerServiceOptions{}, nullptr);
    state.ResumeTiming();
    absl::Time start = absl::Now();
    for (int i = 0; i < timers; i += 64) {
      std::vector<RecordInput> batch = EngineBatch(i, std::min(64, timers - i));
      for (size_t j = 0; j < batch.size(); ++j) {
        RecordInput& r = batch[j];
        r.ext.kind = RecordKind::kTimer;
        r.ext.at_ms = absl::ToUnixMillis(clock.Now()) + 1000 + static_cast<int64_t>(i + j) % 997;
        r.ext.target_topic = kTopic;
        r.ext.target_queue = r.queue_id;
        r.topic = kTimerTopic;
        r.queue_id = 0;
      }
      if (!store->Append(batch).ok()) std::abort();
    }
    store->WaitForDispatch(store->GetLogOffsets().committed, absl::Minutes(2));
    scheduled_seconds += absl::ToDoubleSeconds(absl::Now() - start);
    clock.Advance(absl::Seconds(3));
    start = absl::Now();
    int fired = 0;
    while (fired < timers) {
      absl::StatusOr<FireReport> report = service.FireDue();
      if (!report.ok() || report->fired == 0) std::abort();
      fired += report->fired;
    }
    store->WaitForDispatch(store->GetLogOffsets().committed, absl::Minutes(2));
    fired_seconds += absl::ToDoubleSeconds(absl::Now() - start);
    total += timers;
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.counters["scheduled_per_s"] = static_cast<double>(total) / scheduled_seconds;
  state.counters["fired_per_s"] = static_cast<double>(total) / fired_seconds;
}

BENCHMARK(BM_Timers)->ArgName("timers")->Arg(100'000)->Iterations(1)->UseRealTime();
BENCHMARK(BM_EngineAppend)
    ->ArgNames({"sync", "batch"})
    ->Args({0, 1})
    ->Args({0, 64})
    ->Args({1, 1})
    ->Args({1, 64})
    ->Threads(1)
    ->Threads(4)
    ->UseRealTime()
    ->MinTime(2);
BENCHMARK(BM_EngineRead)->ArgName("max_messages")->Arg(32)->Arg(256)->MinTime(2);
BENCHMARK(BM_GrpcAppend)
    ->ArgNames({"sync", "batch", "window"})
    ->Args({0, 1, 256})
    ->Args({0, 64, 1})
    ->Args({0, 64, 32})
    ->Args({1, 1, 256})
    ->Args({1, 64, 32})
    ->UseRealTime()
    ->MinTime(2);

}  // namespace
}  // namespace apogee::store

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
