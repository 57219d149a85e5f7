// The NameServer's route table: which broker instances are alive, what topics
// each broker group serves, and where clients reach them. It is rebuilt from
// broker registrations alone (NameServers never talk to each other), so a
// restarted NameServer is whole again after one registration round.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/nameserver/v1/nameserver.pb.h"
#include "services/common/clock/clock.h"

namespace apogee::nameserver {

// v1 below is this namespace's own ::apogee::nameserver::v1 (the protos);
// an alias of the same name would be a redefinition to clang.

inline constexpr int kMaxQueuesPerTopic = 1024;
inline constexpr int kMaxTopicsPerBroker = 100000;

// Why a broker instance left the table (a metrics label).
enum class RemovalReason { kExpired, kSessionClosed, kUnregistered };
const char* RemovalReasonName(RemovalReason reason);

struct RegisterResult {
  // The broker sent a cheap refresh but the NameServer does not hold its
  // data_version (it restarted, or missed a change): send the topics again.
  bool full_registration_required = false;
  int64_t data_version = 0;
};

struct RegistryStats {
  int64_t live_brokers = 0;
  int64_t broker_groups = 0;
  int64_t topics = 0;
};

// The group's writer and the id each instance gets in routes (see
// BrokerInstance.broker_id in nameserver.proto):
// - the writer is the registered writer=true broker with the highest epoch
//   (ties: the lowest configured id). Without any writer=true broker, a
//   broker with configured id 0 at epoch 0 counts as writer: a broker that
//   predates epochs, or a static master. A configured-0 broker at epoch > 0
//   that says writer=false is a deposed master, never the writer.
// - the writer gets route id 0; a configured-0 broker that is not the writer
//   takes the writer's configured id (a swap, so ids stay unique), or one
//   past the highest configured id while the group has no writer; everyone
//   else keeps its configured id.
// - `fenced`: writer=true brokers that lost to a higher epoch; listed as
//   readers.
struct RouteIds {
  bool has_writer = false;
  int64_t writer = 0;              // configured id of the writer
  std::map<int64_t, int64_t> ids;  // configured id -> route id
  std::set<int64_t> fenced;
};
struct InstanceRole {
  int64_t configured_id = 0;
  int64_t epoch = 0;
  bool writer = false;
};
RouteIds AssignRouteIds(const std::vector<InstanceRole>& instances);

// Thread-safe: every method may be called from any thread.
class Registry {
 public:
  Registry(const Clock* clock, absl::Duration default_expiry);

  // Registers or refreshes a broker instance. `session_id` (non-zero) ties
  // the instance to a BrokerSession stream so EndSession can drop it at once.
  // Rejects invalid input and a second live master for a group; on error the
  // table is unchanged.
  absl::StatusOr<RegisterResult> Register(const v1::BrokerRegistration& registration,
                                          uint64_t session_id = 0);

  // Removes one instance. NOT_FOUND if it is not registered.
  absl::Status Unregister(const std::string& cluster_name, const std::string& broker_name,
                          int64_t broker_id);

  // Removes the instances still bound to `session_id`; returns how many.
  int EndSession(uint64_t session_id);

  // Removes instances not refreshed within their expiry; returns how many.
  int ExpireStale();

  // Route of `topic`: queue data per broker group and every live instance of
  // those groups. NOT_FOUND when no live broker serves it, unless
  // `or_auto_create` (the v2 QueryRoute of official clients): then a topic no
  // broker serves yet is routed to the groups whose writer auto-creates
  // topics (its auto_create_queues), NOT_FOUND only when there are none.
  absl::StatusOr<v1::GetRouteResponse> GetRoute(const std::string& topic,
                                                bool or_auto_create = false) const;

  v1::GetClusterInfoResponse GetClusterInfo() const;

  // Sorted topic names; `cluster_name` empty means all clusters.
  std::vector<std::string> ListTopics(const std::string& cluster_name) const;

  RegistryStats Stats() const;

 private:
  struct Instance {
    int64_t broker_id = 0;  // configured (--broker_id)
    int64_t epoch = 0;
    bool writer = false;
    int32_t auto_create_queues = 0;
    std::string client_endpoint;
    std::string ha_endpoint;
    int64_t data_version = 0;
    absl::Time last_update;
    absl::Duration expiry;
    uint64_t session_id = 0;
    std::map<std::string, v1::TopicConfig> topics;
  };
  struct Group {
    std::string cluster_name;
    std::map<int64_t, Instance> instances;  // by configured broker id
  };

  // The instance whose topics define the group's queues: the writer when
  // alive, else the lowest-id reader (so consumers can still read).
  static const Instance* TopicSource(const Group& group);
  static RouteIds IdsOf(const Group& group);
  void LogNewlyFenced(const std::string& broker_name, const Group& group,
                      const std::set<int64_t>& fenced_before) const;
  void RemoveInstance(std::map<std::string, Group>::iterator group, int64_t broker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildTopicIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The route of a topic no broker serves: every group whose writer creates
  // topics on first use, with the queues it would give them.
  v1::GetRouteResponse AutoCreateRoute(const std::string& topic) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void FillGroup(const std::string& broker_name, const Group& group, v1::BrokerGroup* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;
  const absl::Duration default_expiry_;
  mutable absl::Mutex mu_;
  std::map<std::string, Group> groups_ ABSL_GUARDED_BY(mu_);  // by broker name
  // topic -> broker names whose topic source serves it.
  std::map<std::string, std::set<std::string>> topic_index_ ABSL_GUARDED_BY(mu_);
};

// Checks a registration against the rules, naming the field that breaks one.
absl::Status ValidateRegistration(const v1::BrokerRegistration& registration);

}  // namespace apogee::nameserver
