// A NameServer, a store and a broker as real processes on 127.0.0.1 (free
// ports, a temp dir), for integration tests of anything that talks to a
// running cluster: the broker's own APIs, the SDK, the CLI, benchmarks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apogee/admin/v1/admin.pb.h"
#include "services/common/testing/process.h"

namespace apogee::testing {

struct LocalClusterBinaries {
  std::string nameserver;
  std::string store;
  std::string broker;
};

// Not thread-safe: drive it from the test's main thread.
class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterBinaries binaries) : binaries_(std::move(binaries)) {}

  // Starts all three; `broker_flags` are added to the test defaults
  // (--min_invisible_time=1s, --max_delivery_attempts=3,
  // --heartbeat_interval=1s; later flags win). The broker is broker group
  // "broker-a", index 0.
  absl::Status Start(std::vector<std::string> broker_flags = {});

  // Flags added to the NameServer (set before Start), e.g. --auth=true.
  void set_nameserver_flags(std::vector<std::string> flags) {
    nameserver_flags_ = std::move(flags);
  }
  // Flags added to every store started after this call (later flags win),
  // e.g. a small --segment_size and a short --retention.
  void set_store_flags(std::vector<std::string> flags) { store_flags_ = std::move(flags); }

  // Stores started after this call serve replication on a free port of
  // their own (kept across restarts), and their brokers register it as
  // their HA endpoint, so slaves' stores really follow their master's.
  void enable_replication() { replication_ = true; }

  // The NameServer and stores started after this call serve /metrics on a
  // free port too (brokers always do); off by default, as each exposer
  // takes ~2 s to shut down.
  void enable_metrics() { metrics_ = true; }

  // Adds another broker group: its own store and a master broker named
  // `broker_name`, registered with the same NameServer. Returns its index.
  absl::StatusOr<int> AddBroker(const std::string& broker_name,
                                std::vector<std::string> broker_flags = {});

  // Adds a slave to the group of broker `index`: its own store and a broker
  // with the same --broker_name and --broker_id=`broker_id` (> 0). Returns
  // its index. Its store's files are <dir>/<name>-<id>-store*.
  absl::StatusOr<int> AddSlave(int index, int64_t broker_id,
                               std::vector<std::string> broker_flags = {});

  // Starts (or starts again) broker 0 with the default flags plus `extra`.
  absl::Status StartBroker(std::vector<std::string> extra);
  // Restarts a broker (or store) on the same port (e.g. after SIGKILL).
  absl::Status RestartBroker(int index = 0);
  absl::Status RestartStore(int index = 0);

  // Creates `name` with `queues` read and write queues on broker `index`
  // via the admin API.
  absl::Status CreateTopic(const std::string& name, int queues, int index = 0);

  // Broker `index`'s admin GetBrokerStatus (role, epoch, replicas...).
  absl::StatusOr<admin::v1::GetBrokerStatusResponse> BrokerStatus(int index);

  const std::string& dir() const { return dir_.path(); }
  // host:port of the NameServer and of broker 0.
  const std::string& nameserver_address() const { return nameserver_->address(); }
  const std::string& broker_address() const { return brokers_[0].broker->address(); }
  // Where broker `index` serves its admin API (its --admin_listen, if set).
  const std::string& AdminAddress(int index = 0) const {
    const ServiceProcess& broker = *brokers_[index].broker;
    return broker.admin_address().empty() ? broker.address() : broker.admin_address();
  }
  ServiceProcess* nameserver() { return nameserver_.get(); }
  ServiceProcess* store(int index = 0) { return brokers_[index].store.get(); }
  ServiceProcess* broker(int index = 0) { return brokers_[index].broker.get(); }
  const std::string& broker_name(int index = 0) const { return brokers_[index].name; }

 private:
  struct BrokerGroup {
    std::string name;
    int64_t id = 0;  // --broker_id
    std::unique_ptr<ServiceProcess> store;
    std::unique_ptr<ServiceProcess> broker;
    int ha_port = 0;  // the store's --ha_listen port (replication only)
  };

  // Where a broker's store keeps its files and socket: broker-a (id 0)
  // keeps the paths it always had (tests read them).
  std::string StorePrefix(const BrokerGroup& group) const;
  std::string ProcessName(const BrokerGroup& group) const;
  std::string MetricsListen() const {
    return metrics_ ? "--metrics_listen=127.0.0.1:0" : "--metrics_listen=";
  }
  absl::Status StartStore(BrokerGroup* group);
  absl::Status StartBrokerOf(BrokerGroup* group, const std::vector<std::string>& extra);

  LocalClusterBinaries binaries_;
  TempDir dir_;
  std::unique_ptr<ServiceProcess> nameserver_;
  std::vector<BrokerGroup> brokers_;
  std::vector<std::string> store_flags_;
  std::vector<std::string> nameserver_flags_;
  bool replication_ = false;
  bool metrics_ = false;
};

}  // namespace apogee::testing
