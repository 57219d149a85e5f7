// A small apache.rocketmq.v2 client for integration tests that need to
// produce and consume against a real broker (admin API, CLI): send one
// message, receive (long poll), ack, and receive-until-n with a deadline.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"

namespace apogee::testing {

// The message ids of `messages`.
std::set<std::string> MessageIds(const std::vector<apache::rocketmq::v2::Message>& messages);

// Not thread-safe: one test thread. Every call has a deadline.
class V2TestClient {
 public:
  // `client_id` goes in x-mq-client-id (broadcasting members differ by it).
  V2TestClient(const std::string& broker_address, std::string client_id);

  // An extra header on every call from now on.
  void SetHeader(std::string key, std::string value) {
    headers_.emplace_back(std::move(key), std::move(value));
  }

  // Sends one NORMAL message; OK only when the broker stored it.
  absl::Status Send(const std::string& topic, const std::string& id, const std::string& body,
                    const std::string& key = "", const std::string& tag = "");

  // One ReceiveMessage call (every queue of `topic` for `group`), waiting
  // up to `poll` for messages; empty when there were none. What comes stays
  // invisible to the group for `invisible`.
  absl::StatusOr<std::vector<apache::rocketmq::v2::Message>> ReceiveOnce(
      const std::string& group, const std::string& topic, int batch,
      absl::Duration poll = absl::Seconds(1), absl::Duration invisible = absl::Seconds(30));

  absl::Status Ack(const std::string& group, const apache::rocketmq::v2::Message& message);

  // Receives (acking each when `ack`) until at least `n` messages came or
  // `timeout` passed; returns what came.
  std::vector<apache::rocketmq::v2::Message> ReceiveAtLeast(
      const std::string& group, const std::string& topic, int n, bool ack,
      absl::Duration timeout = absl::Seconds(30));

 private:
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) const;

  const std::string client_id_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::unique_ptr<apache::rocketmq::v2::MessagingService::Stub> stub_;
};

}  // namespace apogee::testing
