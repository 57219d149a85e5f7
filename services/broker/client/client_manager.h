// The clients talking to this broker, by x-mq-client-id: their type, group
// and latest Settings, refreshed by Telemetry and Heartbeat and dropped on
// NotifyClientTermination, stream end, or silence past the idle expiry.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "services/common/clock/clock.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

struct ClientCounts {
  int producers = 0;
  int consumers = 0;
};

// Thread-safe, in memory.
class ClientManager {
 public:
  ClientManager(const Clock* clock, absl::Duration idle_expiry)
      : clock_(clock), idle_expiry_(idle_expiry) {}

  void OnSettings(const std::string& client_id, const v2::Settings& settings);
  void OnHeartbeat(const std::string& client_id, v2::ClientType type, const std::string& group);
  void Remove(const std::string& client_id);
  // Drops clients silent for longer than the idle expiry; returns how many.
  int ExpireIdle();
  ClientCounts Counts() const;
  // Client ids that named `group` in their latest heartbeat (consumers).
  std::vector<std::string> ClientsOfGroup(const std::string& group) const;
  // The (namespaced) topics a producer publishes, from its Settings.
  void SetPublishing(const std::string& client_id, std::vector<std::string> topics);
  // Producers publishing `topic`, least recently asked first (transaction
  // checks go round robin); the answer moves them to the back.
  std::vector<std::string> ProducersOf(const std::string& topic);

 private:
  struct Client {
    v2::ClientType type = v2::CLIENT_TYPE_UNSPECIFIED;
    std::string group;
    absl::Time last_seen;
    std::vector<std::string> publishing;
    uint64_t last_asked = 0;
  };

  const Clock* const clock_;
  const absl::Duration idle_expiry_;
  mutable absl::Mutex mu_;
  std::map<std::string, Client> clients_ ABSL_GUARDED_BY(mu_);
  uint64_t asks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace apogee::broker
