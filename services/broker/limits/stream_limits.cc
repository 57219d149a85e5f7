#include "services/broker/limits/stream_limits.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace apogee::broker {
namespace {

constexpr int32_t kMaxStreams = 1'000'000;

absl::Status CheckPair(const char* total_flag, int32_t total, const char* per_client_flag,
                       int32_t per_client) {
  if (total < 1 || total > kMaxStreams) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", total_flag, "=", total, " is out of range (allowed: 1..", kMaxStreams, ")"));
  }
  if (per_client < 1 || per_client > total) {
    return absl::InvalidArgumentError(absl::StrCat("--", per_client_flag, "=", per_client,
                                                   " is out of range (allowed: 1..--", total_flag,
                                                   "=", total, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateStreamLimits(const StreamLimits& limits) {
  absl::Status s =
      CheckPair("max_telemetry_streams", limits.max_telemetry_streams,
                "max_telemetry_streams_per_client", limits.max_telemetry_streams_per_client);
  if (!s.ok()) return s;
  return CheckPair("max_push_streams", limits.max_push_streams, "max_push_streams_per_client",
                   limits.max_push_streams_per_client);
}

StreamCounter::StreamCounter(std::string kind, std::string total_flag, int32_t max_total,
                             std::string per_client_flag, int32_t max_per_client)
    : kind_(std::move(kind)),
      total_flag_(std::move(total_flag)),
      max_total_(max_total),
      per_client_flag_(std::move(per_client_flag)),
      max_per_client_(max_per_client) {}

absl::StatusOr<StreamCounter::Lease> StreamCounter::OpenAny() {
  absl::MutexLock lock(&mu_);
  if (total_ >= max_total_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many ", kind_, " streams on this broker: ", total_, " open, the limit is --",
        total_flag_, "=", max_total_, "; retry later or use another broker"));
  }
  ++total_;
  return Lease(nullptr, [this](void*) {
    absl::MutexLock lock(&mu_);
    --total_;
  });
}

absl::StatusOr<StreamCounter::Lease> StreamCounter::OpenForClient(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  int64_t& open = per_client_[client_id];
  if (open >= max_per_client_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many ", kind_, " streams of client \"", client_id, "\": ", open,
        " open, the limit is --", per_client_flag_, "=", max_per_client_,
        "; close unused ones (the same client id on many instances also counts here)"));
  }
  ++open;
  return Lease(nullptr, [this, client_id](void*) {
    absl::MutexLock lock(&mu_);
    auto it = per_client_.find(client_id);
    if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
  });
}

absl::StatusOr<StreamCounter::Lease> StreamCounter::Open(const std::string& client_id) {
  absl::StatusOr<Lease> any = OpenAny();
  if (!any.ok()) return any.status();
  absl::StatusOr<Lease> mine = OpenForClient(client_id);
  if (!mine.ok()) return mine.status();  // `any` is released on return
  auto both =
      std::make_shared<std::pair<Lease, Lease>>(std::move(any).value(), std::move(mine).value());
  return Lease(both);
}

int64_t StreamCounter::total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

int64_t StreamCounter::of_client(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = per_client_.find(client_id);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace apogee::broker
