// The broker's topics: name → queue counts, permission and message type.
// Durable in the store (config kind "topic"), cached here, announced to the
// NameServers through the Registrar whenever the set changes.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "apogee/nameserver/v1/nameserver.pb.h"
#include "services/broker/store_client/store_client.h"

namespace apogee::broker {

using TopicConfig = ::apogee::nameserver::v1::TopicConfig;

// Retry and dead-letter topics of a consumer group (RocketMQ's names).
std::string RetryTopic(const std::string& group);
std::string DlqTopic(const std::string& group);
bool IsRetryTopic(const std::string& topic);
bool IsDlqTopic(const std::string& topic);

struct TopicOptions {
  bool auto_create = true;
  int default_queues = 8;
};

// Thread-safe. Store calls happen on the caller's thread (never a gRPC
// callback thread).
class TopicManager {
 public:
  TopicManager(StoreClient* store, TopicOptions options) : store_(store), options_(options) {}

  // Loads every topic from the store (at start-up).
  absl::Status Load();
  // Replaces what it holds with the store's topics (a slave, whose store
  // receives its master's configs); runs the listener when they changed.
  absl::Status Reload();

  // Called after every change (outside the lock).
  void SetListener(std::function<void()> listener) { listener_ = std::move(listener); }

  // Creates or replaces a topic after validating it.
  absl::Status Upsert(const TopicConfig& config);
  absl::Status Delete(const std::string& name);

  // The topic; NOT_FOUND naming it when absent.
  absl::StatusOr<TopicConfig> Get(const std::string& name) const;
  // The topic, created with defaults when auto-create is on (for sends).
  // A topic created here gets `type`: a send passes the type of the message
  // that creates it (RocketMQ 5); when two first messages of different types
  // race, the first to be stored wins and the other gets the type conflict.
  absl::StatusOr<TopicConfig> GetOrAutoCreate(
      const std::string& name, ::apogee::nameserver::v1::TopicMessageType type =
                                   ::apogee::nameserver::v1::TOPIC_MESSAGE_TYPE_UNSPECIFIED);
  // Retry/DLQ topics: always created on demand with one queue.
  absl::StatusOr<TopicConfig> GetOrCreateSystem(const std::string& name);

  std::vector<TopicConfig> List() const;

  // True when a record stored at `commit_offset` under `topic`'s name
  // belongs to a deleted incarnation of it: the topic is gone, or was
  // created again at a later commit-log offset. Retry copies of such records
  // are not delivered.
  bool IsFromDeletedTopic(const std::string& topic, int64_t commit_offset) const;

 private:
  absl::Status Persist(const TopicConfig& config);
  // The topic, created read-write with `queues` queues when absent.
  absl::StatusOr<TopicConfig> GetOrCreate(
      const std::string& name, int queues,
      ::apogee::nameserver::v1::TopicMessageType type =
          ::apogee::nameserver::v1::TOPIC_MESSAGE_TYPE_UNSPECIFIED);

  StoreClient* const store_;
  const TopicOptions options_;
  std::function<void()> listener_;
  mutable absl::Mutex mu_;
  std::map<std::string, TopicConfig> topics_ ABSL_GUARDED_BY(mu_);
  // Where each topic's incarnation begins in the commit log (store's
  // Topic.incarnation_start; absent: 0).
  std::map<std::string, int64_t> incarnation_start_ ABSL_GUARDED_BY(mu_);
  // Serializes writers so the store and the cache agree.
  absl::Mutex write_mu_;
};

// Validates a topic config (name, queues 1..1024, permission, type).
absl::Status ValidateTopicConfig(const TopicConfig& config);

}  // namespace apogee::broker
