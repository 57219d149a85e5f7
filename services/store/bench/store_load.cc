// store_load: steady append load on a running apogee-store, over its gRPC
// API (unix socket or TCP), for a fixed time. Drives every index the store
// keeps: each record has its own message id and key, queues are spread over
// several topics, and a consumer group commits offsets as it goes. Prints
// one progress line per --report_interval and a summary. The store soak
// (scripts/soak-store.sh, figures in docs/benchmarks.md) runs it while it
// samples the store's RSS.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, target, "unix:/tmp/apogee-store.sock", "The store's gRPC address");
ABSL_FLAG(absl::Duration, duration, absl::Minutes(5), "How long to append");
ABSL_FLAG(int32_t, topics, 4, "Topics to spread the records over (created if missing)");
ABSL_FLAG(int32_t, queues, 8, "Queues per topic");
ABSL_FLAG(int32_t, batch, 16, "Records per append batch");
ABSL_FLAG(int32_t, window, 16, "Batches in flight on the append stream");
ABSL_FLAG(int32_t, body_size, 256, "Body bytes per record");
ABSL_FLAG(int32_t, rate, 10000, "Records per second at most (0: as fast as the store answers)");
ABSL_FLAG(absl::Duration, report_interval, absl::Seconds(10), "Progress line period");

namespace {

namespace sv1 = ::apogee::store::v1;

std::unique_ptr<grpc::ClientContext> Deadline(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

std::string TopicName(int t) { return absl::StrCat("Soak", t); }

// Counters shared by the writer, the answer reader and the reporter.
struct Progress {
  absl::Mutex mu;
  int64_t sent_batches ABSL_GUARDED_BY(mu) = 0;
  int64_t answered_batches ABSL_GUARDED_BY(mu) = 0;
  int64_t stored_records ABSL_GUARDED_BY(mu) = 0;
  int64_t failed_batches ABSL_GUARDED_BY(mu) = 0;
  std::string last_error ABSL_GUARDED_BY(mu);
  bool stream_closed ABSL_GUARDED_BY(mu) = false;
};

class Load {
 public:
  explicit Load(std::shared_ptr<grpc::Channel> channel) : stub_(sv1::Store::NewStub(channel)) {}

  bool CreateTopics(int topics, int queues) {
    for (int t = 0; t < topics; ++t) {
      sv1::PutTopicRequest put;
      put.mutable_topic()->set_name(TopicName(t));
      put.mutable_topic()->set_queue_count(queues);
      sv1::PutTopicResponse response;
      const grpc::Status s = stub_->PutTopic(Deadline(absl::Seconds(10)).get(), put, &response);
      if (!s.ok()) {
        std::fprintf(stderr, "store_load: PutTopic %s: %s\n", TopicName(t).c_str(),
                     s.error_message().c_str());
        return false;
      }
    }
    return true;
  }

  // Appends until `duration` has passed; returns false when the stream broke.
  bool Run(absl::Duration duration, int topics, int queues) {
    const int batch = absl::GetFlag(FLAGS_batch);
    const int window = absl::GetFlag(FLAGS_window);
    const int rate = absl::GetFlag(FLAGS_rate);
    const std::string body(static_cast<size_t>(absl::GetFlag(FLAGS_body_size)), 'b');
    grpc::ClientContext context;
    auto stream = stub_->Append(&context);
    std::thread reader([&] { ReadAnswers(stream.get()); });
    std::thread reporter([&] { Report(duration); });

    const absl::Time start = absl::Now();
    int64_t records = 0;
    uint64_t request_id = 0;
    sv1::AppendRequest request;
    while (absl::Now() - start < duration) {
      {
        absl::MutexLock lock(&progress_.mu);
        auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(progress_.mu) {
          return progress_.stream_closed ||
                 progress_.sent_batches - progress_.answered_batches < window;
        };
        progress_.mu.Await(absl::Condition(&room));
        if (progress_.stream_closed) break;
        ++progress_.sent_batches;
      }
      request.Clear();
      request.set_request_id(++request_id);
      for (int i = 0; i < batch; ++i, ++records) {
        sv1::AppendRecord* r = request.add_records();
        const int64_t n = records;
        r->set_topic(TopicName(static_cast<int>(n % topics)));
        r->set_queue_id(static_cast<int32_t>((n / topics) % queues));
        r->set_message_id(absl::StrFormat("SOAK%020d", n));
        r->add_keys(absl::StrCat("order-", n));
        r->set_tag(n % 2 == 0 ? "TagA" : "TagB");
        r->set_body(body);
      }
      if (!stream->Write(request)) break;
      if (request_id % 64 == 0) CommitOffsets(records, topics, queues);
      if (rate > 0) {
        // Pace: sleep until the records sent so far are due.
        const absl::Time due = start + absl::Seconds(static_cast<double>(records) / rate);
        const absl::Duration ahead = due - absl::Now();
        if (ahead > absl::ZeroDuration()) absl::SleepFor(ahead);
      }
    }
    {
      absl::MutexLock lock(&progress_.mu);
      auto all = [&]() ABSL_SHARED_LOCKS_REQUIRED(progress_.mu) {
        return progress_.stream_closed || progress_.answered_batches == progress_.sent_batches;
      };
      progress_.mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30));
    }
    stream->WritesDone();
    reader.join();
    const grpc::Status finished = stream->Finish();
    {
      absl::MutexLock lock(&progress_.mu);
      done_ = true;
    }
    reporter.join();
    absl::MutexLock lock(&progress_.mu);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf(
        "store_load: done took=%.0fs stored_records=%lld records_per_s=%.0f failed_batches=%lld "
        "offset_commits=%lld stream=%s%s%s\n",
        seconds, static_cast<long long>(progress_.stored_records),
        static_cast<double>(progress_.stored_records) / seconds,
        static_cast<long long>(progress_.failed_batches), static_cast<long long>(commits_),
        finished.ok() ? "ok" : finished.error_message().c_str(),
        progress_.last_error.empty() ? "" : " last_error=", progress_.last_error.c_str());
    std::fflush(stdout);
    return finished.ok() && progress_.failed_batches == 0;
  }

 private:
  void ReadAnswers(grpc::ClientReaderWriter<sv1::AppendRequest, sv1::AppendResponse>* stream) {
    sv1::AppendResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&progress_.mu);
      ++progress_.answered_batches;
      if (response.code() == 0) {
        progress_.stored_records += response.results_size();
      } else {
        ++progress_.failed_batches;
        progress_.last_error = response.message();
      }
    }
    absl::MutexLock lock(&progress_.mu);
    progress_.stream_closed = true;
  }

  // The group "SoakGroup" commits what was appended so far on one queue of
  // each topic (the offsets index sees steady writes, as from consumers).
  void CommitOffsets(int64_t records, int topics, int queues) {
    const int64_t per_queue = records / (static_cast<int64_t>(topics) * queues);
    const int32_t queue = static_cast<int32_t>(commits_ % queues);
    for (int t = 0; t < topics; ++t) {
      sv1::CommitOffsetRequest commit;
      commit.set_group("SoakGroup");
      commit.set_topic(TopicName(t));
      commit.set_queue_id(queue);
      commit.set_offset(std::max<int64_t>(0, per_queue - 1));
      sv1::CommitOffsetResponse response;
      // Best effort: an offset past a queue's end is refused, and that is fine here.
      stub_->CommitOffset(Deadline(absl::Seconds(5)).get(), commit, &response).ok();
    }
    ++commits_;
  }

  void Report(absl::Duration duration) {
    const absl::Time start = absl::Now();
    const absl::Duration every = absl::GetFlag(FLAGS_report_interval);
    int64_t last = 0;
    absl::MutexLock lock(&progress_.mu);
    while (true) {
      auto finished = [&]() ABSL_SHARED_LOCKS_REQUIRED(progress_.mu) { return done_; };
      if (progress_.mu.AwaitWithTimeout(absl::Condition(&finished), every)) return;
      const int64_t stored = progress_.stored_records;
      std::printf(
          "store_load: t=%.0fs stored_records=%lld records_per_s=%.0f failed_batches=%lld\n",
          absl::ToDoubleSeconds(absl::Now() - start), static_cast<long long>(stored),
          static_cast<double>(stored - last) / absl::ToDoubleSeconds(every),
          static_cast<long long>(progress_.failed_batches));
      std::fflush(stdout);
      last = stored;
      if (absl::Now() - start > duration + absl::Minutes(1)) return;
    }
  }

  std::unique_ptr<sv1::Store::Stub> stub_;
  Progress progress_;
  bool done_ ABSL_GUARDED_BY(progress_.mu) = false;
  int64_t commits_ = 0;  // writer thread only
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int topics = absl::GetFlag(FLAGS_topics);
  const int queues = absl::GetFlag(FLAGS_queues);
  if (topics < 1 || queues < 1 || absl::GetFlag(FLAGS_batch) < 1 ||
      absl::GetFlag(FLAGS_window) < 1 || absl::GetFlag(FLAGS_body_size) < 0 ||
      absl::GetFlag(FLAGS_rate) < 0) {
    std::fprintf(stderr,
                 "store_load: --topics, --queues, --batch and --window must be positive, "
                 "--body_size and --rate not negative\n");
    return 2;
  }
  Load load(grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials()));
  if (!load.CreateTopics(topics, queues)) return 1;
  return load.Run(absl::GetFlag(FLAGS_duration), topics, queues) ? 0 : 1;
}
