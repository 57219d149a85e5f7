// apogee-bench: load generator built on the C++ SDK.
//
//   apogee-bench produce --endpoints=NS --topic=T --size=BYTES (--count=N|--duration=D)
//                        --concurrency=N [--batch=N] [--rate=N] [--json]
//   apogee-bench produce ... --window=N   (one thread, N async sends in flight)
//   apogee-bench consume --endpoints=NS --topic=T --group=G (--count=N|--duration=D)
//                        [--timeout=D] [--concurrency=N] [--consumer=simple|push] [--json]
//   apogee-bench e2e     (produce and consume at once; latency is born -> received)
//   produce/e2e --delay=D [--delay_from_start]: delayed messages (consumers
//                        report their lateness, received - delivery time)
//   produce/e2e --message_groups=N: FIFO messages, groups round-robin per send
//
// A progress line goes to stderr every second, then a summary; with --json
// the summary is also one JSON line on stdout with the keys messages,
// errors, seconds, msgs_per_s, mb_per_s, p50_us, p99_us, p999_us.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apogee/apogee.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/config/flags.h"

ABSL_FLAG(std::string, endpoints, "127.0.0.1:9876", "NameServer host:port list (';'-separated)");
ABSL_FLAG(std::string, topic, "BenchTopic", "topic");
ABSL_FLAG(std::string, group, "BenchGroup", "consumer group (consume, e2e)");
ABSL_FLAG(int64_t, size, 1024, "message body bytes (produce, e2e)");
ABSL_FLAG(int64_t, count, 0, "stop after this many messages (0: use --duration)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "run time when --count is 0");
ABSL_FLAG(int, concurrency, 4, "producer threads (produce) or receiving threads (consume)");
ABSL_FLAG(int, batch, 1, "messages per send (produce)");
ABSL_FLAG(int, window, 0,
          "produce: one thread keeps this many single-message SendAsync sends in flight, each "
          "counted when acknowledged (as the peer harness's produce_tput); 0: --concurrency "
          "threads of blocking sends");
ABSL_FLAG(int, send_batch_messages, 0,
          "produce --window: ProducerOptions::max_batch_messages (1: one message per SendMessage "
          "call, as official clients send); 0: the SDK default");
ABSL_FLAG(absl::Duration, send_linger, absl::InfiniteDuration(),
          "produce --window: ProducerOptions::linger (default: the SDK default)");
ABSL_FLAG(int, send_calls_in_flight, 0,
          "produce --window: ProducerOptions::max_batch_calls_in_flight; 0: the SDK default");
ABSL_FLAG(int, receive_batch, 32,
          "consume --consumer=simple: max_messages per Receive call (1..1024)");
ABSL_FLAG(absl::Duration, delay, absl::ZeroDuration(),
          "produce/e2e: send delayed messages, each due this long after its send (consumers "
          "then report lateness: receipt - delivery time, and how many came early)");
ABSL_FLAG(bool, delay_from_start, false,
          "produce/e2e --delay: every message is due --delay after the run's start (all at "
          "once), not after its own send");
ABSL_FLAG(int, message_groups, 0,
          "produce/e2e: send FIFO messages over this many message groups (\"g0\"..), the "
          "group round-robin per send call (a --batch shares one group); 0: normal messages");
ABSL_FLAG(
    int, prefetch, 0,
    "push consumer: credits per broker stream (0: the SDK's default, max(concurrency, 1024))");
ABSL_FLAG(absl::Duration, settle_linger, absl::InfiniteDuration(),
          "push consumer: PushConsumerOptions::settle_linger (default: the SDK default; 0: none)");
ABSL_FLAG(int64_t, rate, 0, "target messages per second (0: unlimited)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10),
          "consume: stop when no message arrived for this long");
ABSL_FLAG(std::string, consumer, "simple",
          "consume/e2e: simple (receive + batch ack) or push (streaming push, --concurrency "
          "callbacks and credits)");
ABSL_FLAG(bool, tls, false, "TLS to NameServers and brokers (implied by --tls_ca, --tls_cert)");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle of the servers' certificates (default: system)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate, for servers that require one");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(bool, json, false, "print the summary as one JSON line on stdout");

namespace {

// Latencies of one thread, merged at the end.
struct Recorder {
  std::vector<int64_t> latencies_us;
  // Consumers: store time (the store's clock, same host here) to receipt,
  // which splits e2e latency into the produce and the delivery part.
  std::vector<int64_t> delivery_us;
  // Delayed messages: delivery time to receipt (negative: early).
  std::vector<int64_t> late_us;
  // e2e: only messages born once the consumer had joined count (set by
  // Consume); earlier ones waited for the join (the topic's route, the
  // subscription), which says nothing of delivery. They are counted here.
  const std::atomic<int64_t>* measure_from_us = nullptr;
  int64_t before_join = 0;

  // Room for `messages` latencies at once (up to 4M each, 32 MiB), so a
  // run by count does not regrow its arrays: in a drain's profile, copying
  // and faulting them in as they grew was ~2 % of the bench's samples.
  void Reserve(int64_t messages, bool consumer) {
    const auto n = static_cast<size_t>(std::clamp<int64_t>(messages, 0, int64_t{1} << 22));
    latencies_us.reserve(n);
    if (consumer) delivery_us.reserve(n);
  }

  void OnReceived(const apogee::ReceivedMessage& m, absl::Time now) {
    if (measure_from_us != nullptr &&
        absl::ToUnixMicros(m.born_time) < measure_from_us->load(std::memory_order_relaxed)) {
      ++before_join;
      return;
    }
    latencies_us.push_back(absl::ToInt64Microseconds(now - m.born_time));
    delivery_us.push_back(absl::ToInt64Microseconds(now - m.store_time));
    if (m.delivery_time != absl::InfinitePast()) {
      late_us.push_back(absl::ToInt64Microseconds(now - m.delivery_time));
    }
  }
};

struct Totals {
  std::atomic<int64_t> messages{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> bytes{0};
};

// The run's stop rule: a message budget or a deadline. Thread-safe.
class Budget {
 public:
  Budget(int64_t count, absl::Duration duration) : count_(count), end_(absl::Now() + duration) {}
  // Claims up to `n` messages; 0 when the run is over.
  int64_t Claim(int64_t n) {
    if (stopped_.load()) return 0;
    if (count_ <= 0) return absl::Now() < end_ ? n : 0;
    const int64_t before = claimed_.fetch_add(n);
    return std::max<int64_t>(0, std::min(n, count_ - before));
  }
  bool ByCount() const { return count_ > 0; }
  int64_t count() const { return count_; }
  void Stop() { stopped_ = true; }
  bool Over() const { return stopped_.load() || (count_ <= 0 && absl::Now() >= end_); }

 private:
  const int64_t count_;
  const absl::Time end_;
  std::atomic<int64_t> claimed_{0};
  std::atomic<bool> stopped_{false};
};

// Spaces sends `1/rate` apart across all threads. Thread-safe. A sleep
// that overshot (timer slack, a busy machine) is made up by sending the
// next ones at once, up to kMaxLag behind the schedule, so the run reaches
// its rate instead of losing every overshoot.
class Pacer {
 public:
  static constexpr absl::Duration kMaxLag = absl::Milliseconds(20);
  explicit Pacer(int64_t rate)
      : interval_(rate > 0 ? absl::Seconds(1) / rate : absl::ZeroDuration()) {}
  void Wait(int64_t n) {
    if (interval_ == absl::ZeroDuration()) return;
    absl::Time at;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      if (next_ == absl::InfinitePast()) next_ = now;  // the first send: no lag to make up
      if (next_ < now - kMaxLag) next_ = now - kMaxLag;
      at = next_;
      next_ += interval_ * n;
    }
    absl::SleepFor(at - absl::Now());  // pacing is the point here
  }

 private:
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time next_ = absl::InfinitePast();
};

// Prints "<mode> 3.0s 12345 msgs 4115 msg/s errors 0" to stderr every second.
class Progress {
 public:
  Progress(std::string mode, const Totals* totals)
      : mode_(std::move(mode)), totals_(totals), start_(absl::Now()), thread_([this] { Loop(); }) {}
  ~Progress() { Stop(); }
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      stop_ = true;
    }
    thread_.join();
    std::fprintf(stderr, "\n");
  }

 private:
  void Loop() {
    int64_t last = 0;
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Seconds(1))) {
      const int64_t now = totals_->messages.load();
      std::fprintf(stderr, "\r%s %6.1fs %10lld msgs %9lld msg/s errors %lld   ", mode_.c_str(),
                   absl::ToDoubleSeconds(absl::Now() - start_), static_cast<long long>(now),
                   static_cast<long long>(now - last),
                   static_cast<long long>(totals_->errors.load()));
      last = now;
    }
  }

  const std::string mode_;
  const Totals* const totals_;
  const absl::Time start_;
  absl::Mutex mu_;
  bool stop_ = false;
  std::thread thread_;
};

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[i];
}

// Every recorder's `field`, sorted.
std::vector<int64_t> Merged(const std::vector<Recorder>& recorders,
                            std::vector<int64_t> Recorder::*field) {
  std::vector<int64_t> all;
  for (const Recorder& r : recorders) all.insert(all.end(), (r.*field).begin(), (r.*field).end());
  std::sort(all.begin(), all.end());
  return all;
}

// Lateness of delayed messages (a line and JSON keys); empty without any.
std::string LatenessReport(const std::string& mode, const std::vector<Recorder>& recorders) {
  const std::vector<int64_t> late = Merged(recorders, &Recorder::late_us);
  if (late.empty()) return "";
  const int64_t early = std::lower_bound(late.begin(), late.end(), 0) - late.begin();
  std::fprintf(stderr,
               "%s: %zu delayed messages, delivery time -> received p50 %lld us, p99 %lld us, "
               "p99.9 %lld us, min %lld us, max %lld us; early %lld\n",
               mode.c_str(), late.size(), static_cast<long long>(Percentile(late, 0.50)),
               static_cast<long long>(Percentile(late, 0.99)),
               static_cast<long long>(Percentile(late, 0.999)),
               static_cast<long long>(late.front()), static_cast<long long>(late.back()),
               static_cast<long long>(early));
  return absl::StrFormat(
      ",\"delayed\":%d,\"late_p50_us\":%d,\"late_p99_us\":%d,\"late_p999_us\":%d,"
      "\"late_min_us\":%d,\"late_max_us\":%d,\"early\":%d",
      late.size(), Percentile(late, 0.50), Percentile(late, 0.99), Percentile(late, 0.999),
      late.front(), late.back(), early);
}

void Report(const std::string& mode, const Totals& totals, absl::Duration elapsed,
            std::vector<Recorder>& recorders, const std::string& extra_json) {
  const std::vector<int64_t> all = Merged(recorders, &Recorder::latencies_us);
  const double seconds = std::max(absl::ToDoubleSeconds(elapsed), 1e-9);
  const int64_t messages = totals.messages.load();
  const double msgs_per_s = static_cast<double>(messages) / seconds;
  const double mb_per_s = static_cast<double>(totals.bytes.load()) / seconds / (1024.0 * 1024.0);
  const int64_t p50 = Percentile(all, 0.50), p99 = Percentile(all, 0.99),
                p999 = Percentile(all, 0.999);
  const std::vector<int64_t> delivery = Merged(recorders, &Recorder::delivery_us);
  std::string delivery_json = LatenessReport(mode, recorders);
  if (!delivery.empty()) {
    delivery_json += absl::StrFormat(
        ",\"stored_to_received_p50_us\":%d,\"stored_to_received_p99_us\":%d,"
        "\"stored_to_received_p999_us\":%d",
        Percentile(delivery, 0.50), Percentile(delivery, 0.99), Percentile(delivery, 0.999));
    std::fprintf(stderr, "%s: stored -> received p50 %lld us, p99 %lld us, p99.9 %lld us\n",
                 mode.c_str(), static_cast<long long>(Percentile(delivery, 0.50)),
                 static_cast<long long>(Percentile(delivery, 0.99)),
                 static_cast<long long>(Percentile(delivery, 0.999)));
  }
  std::fprintf(stderr,
               "%s: %lld messages, %lld errors in %.2fs: %.0f msg/s, %.2f MiB/s; latency p50 %lld "
               "us, p99 %lld us, p99.9 %lld us\n",
               mode.c_str(), static_cast<long long>(messages),
               static_cast<long long>(totals.errors.load()), seconds, msgs_per_s, mb_per_s,
               static_cast<long long>(p50), static_cast<long long>(p99),
               static_cast<long long>(p999));
  if (absl::GetFlag(FLAGS_json)) {
    std::printf(
        "{\"mode\":\"%s\",\"messages\":%lld,\"errors\":%lld,\"seconds\":%.3f,\"msgs_per_s\":%.1f,"
        "\"mb_per_s\":%.3f,\"p50_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld%s%s}\n",
        mode.c_str(), static_cast<long long>(messages),
        static_cast<long long>(totals.errors.load()), seconds, msgs_per_s, mb_per_s,
        static_cast<long long>(p50), static_cast<long long>(p99), static_cast<long long>(p999),
        delivery_json.c_str(), extra_json.c_str());
    std::fflush(stdout);
  }
}

std::vector<std::string> Endpoints() {
  return absl::StrSplit(absl::GetFlag(FLAGS_endpoints), ';', absl::SkipEmpty());
}

apogee::TlsOptions Tls() {
  apogee::TlsOptions tls;
  tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  tls.key_file = absl::GetFlag(FLAGS_tls_key);
  tls.enabled = absl::GetFlag(FLAGS_tls) || !tls.ca_file.empty() || !tls.cert_file.empty();
  return tls;
}

// What a send sets besides the body: its delivery time (--delay) and its
// message group (--message_groups, round-robin over the run's sends).
// Thread-safe.
class Shaper {
 public:
  Shaper()
      : delay_(absl::GetFlag(FLAGS_delay)),
        due_at_start_(absl::GetFlag(FLAGS_delay_from_start)),
        groups_(absl::GetFlag(FLAGS_message_groups)),
        start_(absl::Now()) {}
  void Apply(apogee::Message& m) {
    if (delay_ > absl::ZeroDuration())
      m.delivery_time = (due_at_start_ ? start_ : absl::Now()) + delay_;
    if (groups_ > 0) m.message_group = absl::StrCat("g", next_.fetch_add(1) % groups_);
  }

 private:
  const absl::Duration delay_;
  const bool due_at_start_;
  const int groups_;
  const absl::Time start_;
  std::atomic<uint64_t> next_{0};
};

// Sends until the budget is spent. Latency is per send call.
void ProduceLoop(apogee::Producer& producer, Budget& budget, Pacer& pacer, Shaper& shaper,
                 Totals& totals, Recorder& recorder) {
  const int batch = absl::GetFlag(FLAGS_batch);
  apogee::Message m;
  m.topic = absl::GetFlag(FLAGS_topic);
  m.body.assign(static_cast<size_t>(absl::GetFlag(FLAGS_size)), 'x');
  std::vector<apogee::Message> messages;
  while (true) {
    const int64_t n = budget.Claim(batch);
    if (n == 0) return;
    pacer.Wait(n);
    shaper.Apply(m);
    const absl::Time start = absl::Now();
    bool ok;
    if (batch == 1) {
      ok = producer.Send(m).ok();
    } else {
      messages.assign(static_cast<size_t>(n), m);
      ok = producer.SendBatch(messages).ok();
    }
    recorder.latencies_us.push_back(absl::ToInt64Microseconds(absl::Now() - start));
    if (ok) {
      totals.messages += n;
      totals.bytes += n * static_cast<int64_t>(m.body.size());
    } else {
      totals.errors += n;
    }
  }
}

// Keeps `window` single-message SendAsync sends in flight until the budget
// is spent; a message counts when its callback reports it acknowledged, and
// its latency runs from SendAsync to that callback (the peer harness's
// produce_tput method).
void ProduceWindowed(apogee::Producer& producer, int window, Budget& budget, Pacer& pacer,
                     Shaper& shaper, Totals& totals, Recorder& recorder) {
  apogee::Message m;
  m.topic = absl::GetFlag(FLAGS_topic);
  m.body.assign(static_cast<size_t>(absl::GetFlag(FLAGS_size)), 'x');
  absl::Mutex mu;
  int in_flight = 0;
  const auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight < window; };
  const auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight == 0; };
  while (budget.Claim(1) == 1) {
    pacer.Wait(1);
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(&room));
      ++in_flight;
    }
    shaper.Apply(m);
    const absl::Time start = absl::Now();
    producer.SendAsync(m, [&, start](absl::StatusOr<apogee::SendReceipt> receipt) {
      const int64_t us = absl::ToInt64Microseconds(absl::Now() - start);
      absl::MutexLock lock(&mu);
      if (receipt.ok()) {
        recorder.latencies_us.push_back(us);
        totals.messages += 1;
        totals.bytes += static_cast<int64_t>(m.body.size());
      } else {
        totals.errors += 1;
      }
      --in_flight;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&idle));
}

// Receives and acks until the budget is spent. Latency is born time (the
// producer's clock) to receipt. No wait after an error here: Receive itself
// backs off after a failure (100 ms doubling to 3 s), so this never spins.
void ConsumeLoop(apogee::SimpleConsumer& consumer, Budget& budget, Totals& totals,
                 Recorder& recorder, std::atomic<int64_t>& last_arrival_us) {
  while (!budget.Over()) {
    auto messages = consumer.Receive(absl::GetFlag(FLAGS_receive_batch), absl::Seconds(30));
    if (!messages.ok()) {
      totals.errors++;
      continue;
    }
    if (messages->empty()) continue;
    const absl::Time now = absl::Now();
    last_arrival_us = absl::ToUnixMicros(now);
    for (const apogee::ReceivedMessage& m : *messages) {
      recorder.OnReceived(m, now);
      totals.bytes += static_cast<int64_t>(m.body.size());
    }
    if (!consumer.Ack(*messages).ok()) totals.errors++;
    totals.messages += static_cast<int64_t>(messages->size());
    if (budget.ByCount() && totals.messages.load() >= budget.count()) budget.Stop();
  }
}

// In e2e the consumer drains until it has what the producer acknowledged.
struct ProducerState {
  std::atomic<bool> done{false};
  std::atomic<int64_t> acknowledged{0};
};

int Produce(const std::string& mode = "produce", ProducerState* state = nullptr) {
  const int window = absl::GetFlag(FLAGS_window);
  apogee::ProducerOptions options;
  options.endpoints = Endpoints();
  options.tls = Tls();
  if (window > 0) {
    options.max_async_in_flight = std::max(options.max_async_in_flight, window);
    if (absl::GetFlag(FLAGS_send_batch_messages) > 0) {
      options.max_batch_messages = absl::GetFlag(FLAGS_send_batch_messages);
    }
    if (absl::GetFlag(FLAGS_send_linger) != absl::InfiniteDuration()) {
      options.linger = absl::GetFlag(FLAGS_send_linger);
    }
    if (absl::GetFlag(FLAGS_send_calls_in_flight) > 0) {
      options.max_batch_calls_in_flight = absl::GetFlag(FLAGS_send_calls_in_flight);
    }
  }
  auto producer = apogee::Producer::Create(options);
  if (!producer.ok()) {
    std::fprintf(stderr, "%s\n", producer.status().ToString().c_str());
    return 2;
  }
  const int threads = window > 0 ? 1 : std::max(1, absl::GetFlag(FLAGS_concurrency));
  Budget budget(absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_duration));
  Pacer pacer(absl::GetFlag(FLAGS_rate));
  Shaper shaper;
  Totals totals;
  std::vector<Recorder> recorders(static_cast<size_t>(threads));
  for (Recorder& r : recorders) r.Reserve(budget.count() / threads, /*consumer=*/false);
  const absl::Time start = absl::Now();
  {
    Progress progress(mode, &totals);
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i) {
      workers.emplace_back([&, i] {
        if (window > 0) {
          ProduceWindowed(**producer, window, budget, pacer, shaper, totals, recorders[i]);
        } else {
          ProduceLoop(**producer, budget, pacer, shaper, totals, recorders[i]);
        }
      });
    }
    for (std::thread& t : workers) t.join();
  }
  (*producer)->Shutdown();
  if (state != nullptr) {
    state->acknowledged = totals.messages.load();
    state->done = true;
  }
  Report(mode, totals, absl::Now() - start, recorders,
         absl::StrFormat(",\"size\":%d,\"concurrency\":%d,\"batch\":%d,\"window\":%d",
                         absl::GetFlag(FLAGS_size), threads, absl::GetFlag(FLAGS_batch), window));
  return totals.errors.load() == 0 ? 0 : 1;
}

// Creates a consumer with `create`, retrying while its topic has no route
// yet (in e2e the topic appears a moment after the producer starts).
template <typename Create>
auto CreateWhenRouted(Create create) {
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_timeout);
  auto consumer = create();
  while (!consumer.ok() && consumer.status().code() == absl::StatusCode::kNotFound &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));  // waiting for a route; bounded by --timeout
    consumer = create();
  }
  return consumer;
}

int Consume(const std::string& mode = "consume", const ProducerState* producer = nullptr) {
  const int threads = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const bool push = absl::GetFlag(FLAGS_consumer) == "push";
  if (!push && absl::GetFlag(FLAGS_consumer) != "simple") {
    std::fprintf(stderr, "--consumer is \"%s\" (allowed: simple, push)\n",
                 absl::GetFlag(FLAGS_consumer).c_str());
    return 2;
  }
  // e2e: no budget of its own; stops once it has everything produced (or
  // nothing arrived for --timeout).
  Budget budget(absl::GetFlag(FLAGS_count),
                producer != nullptr ? absl::InfiniteDuration() : absl::GetFlag(FLAGS_duration));
  Totals totals;
  std::vector<Recorder> recorders(static_cast<size_t>(threads));
  // The push listener records every message in recorders[0]; simple
  // consumers' threads share them out.
  if (push) {
    recorders[0].Reserve(budget.count(), /*consumer=*/true);
  } else {
    for (Recorder& r : recorders) r.Reserve(budget.count() / threads, /*consumer=*/true);
  }
  absl::Mutex push_mu;  // guards recorders[0] for the push listener
  // e2e: when the consumer had joined; nothing is measured before.
  std::atomic<int64_t> joined_us{std::numeric_limits<int64_t>::max()};
  if (producer != nullptr) {
    for (Recorder& r : recorders) r.measure_from_us = &joined_us;
  }
  std::atomic<int64_t> last_arrival_us{absl::ToUnixMicros(absl::Now())};
  const absl::Time start = absl::Now();
  std::unique_ptr<apogee::SimpleConsumer> simple;
  std::unique_ptr<apogee::PushConsumer> pushed;
  absl::Status created;
  if (push) {
    apogee::PushConsumerOptions options;
    options.endpoints = Endpoints();
    options.tls = Tls();
    options.group = absl::GetFlag(FLAGS_group);
    options.topic = absl::GetFlag(FLAGS_topic);
    options.concurrency = threads;
    options.prefetch = absl::GetFlag(FLAGS_prefetch);
    if (absl::GetFlag(FLAGS_settle_linger) != absl::InfiniteDuration()) {
      options.settle_linger = absl::GetFlag(FLAGS_settle_linger);
    }
    auto listener = [&](const apogee::ReceivedMessage& m) {
      const absl::Time now = absl::Now();
      last_arrival_us = absl::ToUnixMicros(now);
      {
        absl::MutexLock lock(&push_mu);
        recorders[0].OnReceived(m, now);
      }
      totals.bytes += static_cast<int64_t>(m.body.size());
      if (++totals.messages >= budget.count() && budget.ByCount()) budget.Stop();
      return apogee::ConsumeResult::kSuccess;
    };
    auto consumer =
        CreateWhenRouted([&] { return apogee::PushConsumer::Create(options, listener); });
    joined_us = absl::ToUnixMicros(absl::Now());
    created = consumer.status();
    if (consumer.ok()) pushed = std::move(consumer).value();
  } else {
    apogee::SimpleConsumerOptions options;
    options.endpoints = Endpoints();
    options.tls = Tls();
    options.group = absl::GetFlag(FLAGS_group);
    options.subscriptions[absl::GetFlag(FLAGS_topic)] = "*";
    options.await_duration = std::min(absl::GetFlag(FLAGS_timeout), absl::Seconds(2));
    auto consumer = CreateWhenRouted([&] { return apogee::SimpleConsumer::Create(options); });
    joined_us = absl::ToUnixMicros(absl::Now());
    created = consumer.status();
    if (consumer.ok()) simple = std::move(consumer).value();
  }
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.ToString().c_str());
    return 2;
  }
  {
    Progress progress(mode, &totals);
    std::vector<std::thread> workers;
    for (int i = 0; simple != nullptr && i < threads; ++i) {
      workers.emplace_back(
          [&, i] { ConsumeLoop(*simple, budget, totals, recorders[i], last_arrival_us); });
    }
    // Stop rules besides the budget: nothing arrived for --timeout; in e2e,
    // everything the producer acknowledged arrived.
    const absl::Duration idle = absl::GetFlag(FLAGS_timeout);
    while (!budget.Over()) {
      if (absl::Now() - absl::FromUnixMicros(last_arrival_us.load()) > idle) budget.Stop();
      if (producer != nullptr && producer->done &&
          totals.messages.load() >= producer->acknowledged.load()) {
        budget.Stop();
      }
      absl::SleepFor(absl::Milliseconds(50));  // a supervisor tick, not a wait for a result
    }
    for (std::thread& t : workers) t.join();
    if (pushed != nullptr) pushed->Shutdown();
  }
  int64_t before_join = 0;
  for (const Recorder& r : recorders) before_join += r.before_join;
  if (producer != nullptr) {
    std::fprintf(stderr,
                 "%s: %lld messages born before the consumer joined (%.0f ms after the "
                 "start) are not in the latencies\n",
                 mode.c_str(), static_cast<long long>(before_join),
                 absl::ToDoubleMilliseconds(absl::FromUnixMicros(joined_us.load()) - start));
  }
  // The drain ends with its last message: after it, receivers still in a
  // long poll wait out await_duration (up to 2 s) for nothing, and the
  // supervisor a tick; neither is consuming.
  const absl::Time end =
      totals.messages.load() > 0 ? absl::FromUnixMicros(last_arrival_us.load()) : absl::Now();
  Report(mode, totals, end - start, recorders,
         absl::StrFormat(
             ",\"concurrency\":%d,\"consumer\":\"%s\"%s", threads, push ? "push" : "simple",
             producer != nullptr ? absl::StrFormat(",\"born_before_join\":%d", before_join)
                                 : std::string()));
  return totals.errors.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  apogee::ConfigureFlagsUsage();
  absl::SetProgramUsageMessage(
      "apogee-bench produce|consume|e2e --endpoints=NS --topic=T [flags]; see --help");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "usage: apogee-bench produce|consume|e2e [flags] (--help for flags)\n");
    return 2;
  }
  const std::string mode = args[1];
  if (absl::GetFlag(FLAGS_size) < 1 || absl::GetFlag(FLAGS_size) > 4 * 1024 * 1024) {
    std::fprintf(stderr, "--size is %lld (allowed: 1..4194304)\n",
                 static_cast<long long>(absl::GetFlag(FLAGS_size)));
    return 2;
  }
  if (absl::GetFlag(FLAGS_batch) < 1 || absl::GetFlag(FLAGS_batch) > 1024) {
    std::fprintf(stderr, "--batch is %d (allowed: 1..1024)\n", absl::GetFlag(FLAGS_batch));
    return 2;
  }
  if (absl::GetFlag(FLAGS_window) < 0 || absl::GetFlag(FLAGS_window) > 65536) {
    std::fprintf(stderr, "--window is %d (allowed: 0..65536)\n", absl::GetFlag(FLAGS_window));
    return 2;
  }
  if (absl::GetFlag(FLAGS_window) > 0 && absl::GetFlag(FLAGS_batch) != 1) {
    std::fprintf(stderr, "--window sends single messages; --batch is %d (must be 1 with it)\n",
                 absl::GetFlag(FLAGS_batch));
    return 2;
  }
  if (absl::GetFlag(FLAGS_delay) < absl::ZeroDuration()) {
    std::fprintf(stderr, "--delay is %s (must be >= 0)\n",
                 absl::FormatDuration(absl::GetFlag(FLAGS_delay)).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_message_groups) < 0) {
    std::fprintf(stderr, "--message_groups is %d (must be >= 0)\n",
                 absl::GetFlag(FLAGS_message_groups));
    return 2;
  }
  if (absl::GetFlag(FLAGS_message_groups) > 0 &&
      (absl::GetFlag(FLAGS_window) > 0 || absl::GetFlag(FLAGS_delay) > absl::ZeroDuration())) {
    std::fprintf(stderr,
                 "--message_groups sends FIFO messages: not with --window (SendAsync keeps no "
                 "group order) nor --delay (a FIFO message cannot be delayed)\n");
    return 2;
  }
  if (mode == "produce") return Produce();
  if (mode == "consume") return Consume();
  if (mode == "e2e") {
    int consumed = 0;
    ProducerState state;
    std::thread consumer([&] { consumed = Consume("e2e-consume", &state); });
    const int produced = Produce("e2e-produce", &state);
    consumer.join();
    return std::max(produced, consumed);
  }
  std::fprintf(stderr, "unknown mode \"%s\" (produce, consume or e2e)\n", mode.c_str());
  return 2;
}
