// Keeps this broker registered with every NameServer. One session stream per
// NameServer (a broken stream drops the broker there at once), a cheap
// refresh every heartbeat interval, and the full topic set whenever it
// changed or a NameServer asks for it. NameServers are independent: one that
// is down or comes back later does not disturb the others.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/nameserver/v1/nameserver.pb.h"

namespace grpc {
class ClientContext;
}

namespace apogee::broker {

struct BrokerIdentity {
  std::string cluster_name;
  std::string broker_name;
  int64_t broker_id = 0;
  std::string client_endpoint;  // what clients dial (--advertise)
  std::string ha_endpoint;
  // Queues of a topic created on first use; 0: none are (registered so the
  // NameServers route unknown topics here).
  int32_t auto_create_queues = 0;
};

// Thread-safe. Runs one thread per NameServer between Start() and Stop().
class Registrar {
 public:
  using TopicSource = std::function<std::vector<nameserver::v1::TopicConfig>()>;

  // `topics` is called (from registrar threads) for the current topic set.
  Registrar(BrokerIdentity identity, std::vector<std::string> nameservers, absl::Duration interval,
            TopicSource topics);
  ~Registrar();

  // Called on each session's context before it opens (--auth: signs it
  // with the broker's NameServer credential). Set before Start().
  void SetSessionDecorator(std::function<void(grpc::ClientContext*)> decorate) {
    decorate_ = std::move(decorate);
  }

  void Start();
  // Closes every session, so NameServers drop this broker immediately.
  void Stop();

  // The topic set changed: bump the data version and re-register now.
  void TopicsChanged();

  // The replication role changed (services/broker/ha): register the new
  // epoch and writer flag with every NameServer now.
  void SetRole(int64_t epoch, bool writer);

  // How many NameServers acknowledged our latest registration.
  int RegisteredCount() const;

  // Each NameServer and whether it acknowledged our latest registration.
  struct Link {
    std::string address;
    bool registered = false;
  };
  std::vector<Link> Links() const;

 private:
  struct Peer;
  void Run(Peer* peer);
  nameserver::v1::BrokerRegistration Build(bool full, int64_t version) const;

  const BrokerIdentity identity_;
  const absl::Duration interval_;
  const TopicSource topics_;
  std::function<void(grpc::ClientContext*)> decorate_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t data_version_ ABSL_GUARDED_BY(mu_);
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool writer_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Peer>> peers_;
};

}  // namespace apogee::broker
