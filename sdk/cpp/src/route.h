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
  absl::Time fetched;
};

// Thread-safe. Routes are cached and fetched again when older than
// `refresh` or after Invalidate (a send or receive failed).
class RouteCache {
 public:
  RouteCache(Channels* channels, std::vector<std::string> nameservers,
             absl::Duration request_timeout, absl::Duration refresh, const Clock* clock);

  // The route of `topic`. With `any_master_if_unknown`, a topic no
  // NameServer knows yet gets queue 0 of every master in every cluster, so
  // that brokers that auto-create topics can create it on first send.
  absl::StatusOr<std::shared_ptr<const TopicRoute>> Get(const std::string& topic,
                                                        bool any_master_if_unknown = false);
  void Invalidate(const std::string& topic);
  // Fetches every cached topic again (the periodic refresh).
  void RefreshAll();

 private:
  absl::StatusOr<std::shared_ptr<const TopicRoute>> Fetch(const std::string& topic,
                                                          bool any_master_if_unknown);

  Channels* const channels_;
  const std::vector<std::string> nameservers_;
  const absl::Duration request_timeout_;
  const absl::Duration refresh_;
  const Clock* const clock_;

  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const TopicRoute>> routes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> any_master_ ABSL_GUARDED_BY(mu_);
  size_t next_nameserver_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee::sdk
