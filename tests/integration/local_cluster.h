// A NameServer, a store and a broker as real processes on 127.0.0.1 (free
// ports, a temp dir), for integration tests of anything that talks to a
// running cluster: the broker's own APIs, the SDK, the CLI, benchmarks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
  // --heartbeat_interval=1s; later flags win).
  absl::Status Start(std::vector<std::string> broker_flags = {});

  // Starts (or starts again) the broker with the default flags plus `extra`.
  absl::Status StartBroker(std::vector<std::string> extra);
  // Restarts the broker on the same port (e.g. after SIGKILL).
  absl::Status RestartBroker();
  absl::Status RestartStore();

  // Creates `name` with `queues` read and write queues via the admin API.
  absl::Status CreateTopic(const std::string& name, int queues);

  const std::string& dir() const { return dir_.path(); }
  // host:port of the NameServer and of the broker.
  const std::string& nameserver_address() const { return nameserver_->address(); }
  const std::string& broker_address() const { return broker_->address(); }
  ServiceProcess* nameserver() { return nameserver_.get(); }
  ServiceProcess* store() { return store_.get(); }
  ServiceProcess* broker() { return broker_.get(); }

 private:
  LocalClusterBinaries binaries_;
  TempDir dir_;
  std::unique_ptr<ServiceProcess> nameserver_;
  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<ServiceProcess> broker_;
};

}  // namespace apogee::testing
