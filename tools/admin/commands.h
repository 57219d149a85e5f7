// Runs apogee-admin commands: finds brokers through the NameServers
// (GetClusterInfo / GetRoute; masters are broker id 0) and calls their
// apogee.admin.v1 API; `message send` goes through the C++ SDK's Producer.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "apogee/admin/v1/admin.pb.h"
#include "apogee/nameserver/v1/nameserver.pb.h"
#include "tools/admin/cli.h"

namespace apogee::admin_cli {

// A broker process found through the NameServer.
struct BrokerRef {
  std::string cluster;
  std::string name;
  int64_t id = 0;
  std::string endpoint;
};

// Brokers of `info` (masters only when `masters_only`), optionally only
// those named `name`.
std::vector<BrokerRef> BrokersOf(const nameserver::v1::GetClusterInfoResponse& info,
                                 bool masters_only, const std::string& name);
// The masters serving `route`'s queues (optionally only broker `name`).
std::vector<BrokerRef> MastersOf(const nameserver::v1::GetRouteResponse& route,
                                 const std::string& name);

// Output builders (pure, unit-tested): tables for people, JSON for scripts.
Output TopicStatsOutput(
    const std::string& topic,
    const std::vector<std::pair<BrokerRef, admin::v1::GetTopicStatsResponse>>& stats);
Output GroupProgressOutput(
    const std::string& group,
    const std::vector<std::pair<BrokerRef, admin::v1::GetGroupProgressResponse>>& progress);
// `broker status`: one row per broker (role, epoch, replication), and a
// table of the masters' replicas when there are any.
Output BrokerStatusOutput(const std::vector<admin::v1::GetBrokerStatusResponse>& statuses);
Output TopicsOutput(const std::vector<std::pair<BrokerRef, nameserver::v1::TopicConfig>>& topics);
// `timer list`: per broker the pending count, then one row per timer.
Output TimersOutput(const std::vector<std::pair<BrokerRef, admin::v1::ListTimersResponse>>& pages);
Output MessagesOutput(const std::vector<std::pair<BrokerRef, admin::v1::MessageView>>& messages,
                      bool truncated);

// Finds brokers through the NameServers (the first that answers). Not
// thread-safe: one command at a time. Every call has a deadline.
class Directory {
 public:
  explicit Directory(std::vector<std::string> nameservers) : nameservers_(std::move(nameservers)) {}

  absl::StatusOr<nameserver::v1::GetClusterInfoResponse> ClusterInfo();
  absl::StatusOr<nameserver::v1::GetRouteResponse> Route(const std::string& topic);
  // Masters serving `topic` (only broker `broker` when set); NOT_FOUND
  // naming the topic when there is none.
  absl::StatusOr<std::vector<BrokerRef>> TopicMasters(const std::string& topic,
                                                      const std::string& broker);
  // Every master (only broker `broker` when set); NOT_FOUND when none.
  absl::StatusOr<std::vector<BrokerRef>> Masters(const std::string& broker);
  // The masters of `topic`, or every master when `topic` is empty.
  absl::StatusOr<std::vector<BrokerRef>> MastersFor(const std::string& topic);

 private:
  const std::vector<std::string> nameservers_;
};

// Runs the command `inv` names.
absl::StatusOr<Output> RunCommand(const Invocation& inv);

}  // namespace apogee::admin_cli
