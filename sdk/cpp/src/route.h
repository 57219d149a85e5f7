// Topic routes from the NameServers (apogee.nameserver.v1 GetRoute): the
// master of each broker group and its read and write queues.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sdk/cpp/src/backoff.h"
#include "sdk/cpp/src/channels.h"
#include "services/common/clock/clock.h"

namespace apogee::sdk {

// One queue of a topic on one broker's master.
struct QueueRef {
  std::string topic;
  std::string broker;    // broker (group) name
  std::string endpoint;  // the master's host:port
  int32_t queue_id = 0;
};

struct TopicRoute {
  std::vector<QueueRef> writable;  // write queues of groups with a live master
  std::vector<QueueRef> readable;  // read queues of the same
  // Every broker of each group serving the topic: route id (0: the writer)
  // -> client endpoint. Where a broker's read suggestion points.
  std::map<std::string, std::map<int64_t, std::string>> brokers;
  absl::Time fetched;
};

// Trailing metadata of a v2 PullMessage answer: the route broker id to read
// that queue from next (the broker's ha::kReadFromBrokerIdKey).
inline constexpr char kReadFromBrokerIdKey[] = "x-apogee-read-from-broker-id";

// The client endpoint of route id `broker_id` of group `broker`; empty when
// the route does not list it.
std::string BrokerEndpoint(const TopicRoute& route, const std::string& broker, int64_t broker_id);

// Thread-safe. The last good route of each topic is kept and served at once,
// even when stale: only the first Get of a topic waits for a NameServer.
// RefreshAll (run by the client's refresher thread every RefreshTick)
// fetches again the routes older than `refresh`, those Invalidate marked
// (a send or receive failed) and those without queues (with backoff). A refresh that fails, or
// whose NameServers all answer with no queues or NOT_FOUND (one that restarted and has no broker
// registrations yet), keeps the old route and is retried with capped exponential backoff
// (RefreshTick doubling up to `refresh`).
class RouteCache {
 public:
  RouteCache(Channels* channels, std::vector<std::string> nameservers,
             absl::Duration request_timeout, absl::Duration refresh, const Clock* clock);

  // The route of `topic`. With `any_master_if_unknown`, a topic no
  // NameServer knows yet gets queue 0 of every master in every cluster, so
  // that brokers that auto-create topics can create it on first send.
  absl::StatusOr<std::shared_ptr<const TopicRoute>> Get(const std::string& topic,
                                                        bool any_master_if_unknown = false);
  // Refreshes `topic` at the next RefreshAll (backoff permitting); the
  // cached route stays in use until then.
  void Invalidate(const std::string& topic);
  // Fetches again every cached route that is stale or invalidated and not
  // waiting out a backoff (the periodic refresh).
  void RefreshAll();

  // How often the refresher should run RefreshAll for `refresh`: often
  // enough to retry a failed refresh soon, without busy polling.
  static absl::Duration RefreshTick(absl::Duration refresh);

 private:
  struct Entry {
    std::shared_ptr<const TopicRoute> route;  // the last good one
    bool any_master_if_unknown = false;
    bool invalidated = false;
    Backoff backoff;
    absl::Time retry_at = absl::InfinitePast();  // after failed refreshes
  };

  // Asks the NameServers in turn, starting with the last that answered.
  // With `keep_empty` false, an answer with no queues (or NOT_FOUND) is
  // not taken: the next NameServer is asked instead.
  absl::StatusOr<std::shared_ptr<const TopicRoute>> Fetch(const std::string& topic,
                                                          bool any_master_if_unknown,
                                                          bool keep_empty);
  void Refresh(const std::string& topic);

  Channels* const channels_;
  const std::vector<std::string> nameservers_;
  const absl::Duration request_timeout_;
  const absl::Duration refresh_;
  const Clock* const clock_;

  absl::Mutex mu_;
  std::map<std::string, Entry> routes_ ABSL_GUARDED_BY(mu_);
  size_t next_nameserver_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee::sdk
