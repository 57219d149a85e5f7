#include "sdk/cpp/src/send_coalescer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk/cpp/src/retry.h"
#include "services/common/status/v2_status.h"

namespace apogee::sdk {

namespace v2 = ::apache::rocketmq::v2;

BatchAnswer ReadBatchAnswer(const absl::Status& call, const v2::SendMessageResponse& response,
                            int messages, const std::string& topic, const QueueRef& queue) {
  BatchAnswer out;
  out.whole = call;
  const bool mixed = response.status().code() == v2::MULTIPLE_RESULTS;
  if (out.whole.ok() && !mixed) out.whole = FromV2Status(response.status());
  if (out.whole.ok() && response.entries_size() != messages) {
    out.whole = absl::InternalError(absl::StrCat("broker answered ", response.entries_size(),
                                                 " entries for ", messages, " messages"));
  }
  if (!out.whole.ok()) return out;
  out.each.resize(static_cast<size_t>(messages));
  for (int i = 0; i < messages; ++i) {
    const v2::SendResultEntry& e = response.entries(i);
    absl::Status s = FromV2Status(e.status());
    auto& each = out.each[static_cast<size_t>(i)];
    if (s.ok()) {
      each = SendReceipt{e.message_id(), queue.broker, e.offset()};
    } else if (Retryable(s)) {
      out.retry_error = std::move(s);  // not stored: nullopt
    } else {
      each = absl::Status(s.code(),
                          absl::StrCat("send to topic \"", topic, "\": broker ", queue.broker, " (",
                                       queue.endpoint, ") rejected the message: ", s.message()));
    }
  }
  return out;
}

SendCoalescer::SendCoalescer(CoalescerOptions options, const Clock& clock, Flush flush,
                             bool linger_thread)
    : options_(options), clock_(clock), flush_(std::move(flush)) {
  if (linger_thread) linger_ = std::thread([this] { LingerLoop(); });
}

SendCoalescer::~SendCoalescer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (linger_.joinable()) linger_.join();
}

void SendCoalescer::Take(Lane& lane, std::vector<OutgoingBatch>& out) {
  out.push_back(std::move(lane.pending));
  lane.pending = OutgoingBatch();
  lane.bytes = 0;
  lane.calls++;
}

void SendCoalescer::Send(std::vector<OutgoingBatch> batches) {
  for (OutgoingBatch& b : batches) flush_(std::move(b));
}

void SendCoalescer::Add(const std::string& topic, std::vector<QueueRef> queues, grpc::Slice entry,
                        SendCallback callback) {
  const auto size = static_cast<int64_t>(entry.size());
  std::vector<OutgoingBatch> out;
  {
    absl::MutexLock lock(&mu_);
    Lane& lane = lanes_[topic];
    // A message that would overfill the lane leaves with the next call.
    if (!lane.pending.callbacks.empty() && lane.bytes + size > options_.max_bytes) {
      Take(lane, out);
    }
    const bool first = lane.pending.callbacks.empty();
    if (first) {
      lane.pending.topic = topic;
      lane.pending.oldest = clock_.Now();
    }
    lane.pending.queues = std::move(queues);
    lane.pending.entries.push_back(std::move(entry));
    lane.pending.callbacks.push_back(std::move(callback));
    lane.bytes += size;
    if (lane.calls < options_.max_calls_in_flight ||
        static_cast<int>(lane.pending.callbacks.size()) >= options_.max_messages ||
        lane.bytes >= options_.max_bytes) {
      Take(lane, out);
    } else if (first) {
      added_first_++;  // a message waits: the linger thread picks up its deadline
    }
  }
  Send(std::move(out));
}

void SendCoalescer::CallDone(const std::string& topic) {
  std::vector<OutgoingBatch> out;
  {
    absl::MutexLock lock(&mu_);
    Lane& lane = lanes_[topic];
    lane.calls--;
    if (!lane.pending.callbacks.empty() && lane.calls < options_.max_calls_in_flight) {
      Take(lane, out);
    }
  }
  Send(std::move(out));
}

void SendCoalescer::FlushExpired() {
  std::vector<OutgoingBatch> out;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    for (auto& [topic, lane] : lanes_) {
      if (!lane.pending.callbacks.empty() && now - lane.pending.oldest >= options_.linger) {
        Take(lane, out);
      }
    }
  }
  Send(std::move(out));
}

void SendCoalescer::FlushAll() {
  std::vector<OutgoingBatch> out;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [topic, lane] : lanes_) {
      if (!lane.pending.callbacks.empty()) Take(lane, out);
    }
  }
  Send(std::move(out));
}

// Sleeps until the earliest waiting lane's linger ends, or until a lane gets
// its first message (its deadline may be earlier), or until stopped.
void SendCoalescer::LingerLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      absl::Time wake = absl::InfiniteFuture();
      for (const auto& [topic, lane] : lanes_) {
        if (!lane.pending.callbacks.empty()) {
          wake = std::min(wake, lane.pending.oldest + options_.linger);
        }
      }
      const uint64_t seen = added_first_;
      auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || added_first_ != seen;
      };
      if (wake == absl::InfiniteFuture()) {
        mu_.Await(absl::Condition(&changed));
      } else {
        mu_.AwaitWithTimeout(absl::Condition(&changed), wake - clock_.Now());
      }
      if (stop_) return;
    }
    FlushExpired();
  }
}

}  // namespace apogee::sdk
