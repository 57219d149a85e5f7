// The broker process as an object: its configuration (from flags in
// main.cc), the wiring of every module, start-up (waiting for the store,
// serving, registering, periodic tasks) and the shutdown sequence. main()
// only parses flags, starts the app and waits for a termination signal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/limits/request_limits.h"
#include "services/broker/limits/stream_limits.h"
#include "services/broker/route/registrar.h"
#include "services/common/auth/authenticator.h"
#include "services/common/server/grpc_server.h"

namespace apogee::broker {

// Everything the broker is started with (one field per flag, README.md).
struct BrokerConfig {
  BrokerIdentity identity;               // cluster, name, id; endpoints set by Start
  std::vector<std::string> nameservers;  // host:port each
  std::string listen = "0.0.0.0:8081";
  std::shared_ptr<grpc::ServerCredentials> credentials;  // TLS of listen; null: plaintext
  // The admin API (apogee.admin.v1) on its own address, with the same TLS
  // (--admin_listen); empty: served on `listen` with the client APIs.
  std::string admin_listen;
  ConnectionLimits connections;  // of `listen` and `admin_listen`
  std::string advertise;         // empty: 127.0.0.1:<bound port>
  std::string store = "unix:/tmp/apogee-store.sock";
  std::string metrics_listen = "0.0.0.0:8082";
  absl::Duration heartbeat_interval = absl::Seconds(30);
  bool auto_create_topic = true;
  int32_t default_queues = 8;
  int32_t max_delivery_attempts = 17;
  absl::Duration min_invisible_time = absl::Seconds(10);
  absl::Duration max_delivery_delay = absl::Hours(24 * 30);   // delayed messages' horizon
  absl::Duration transaction_check_delay = absl::Seconds(6);  // first check-back
  absl::Duration transaction_check_interval = absl::Seconds(60);
  int32_t transaction_check_max = 15;
  bool new_group_from_earliest = true;
  int32_t worker_threads = 8;
  // Copies of the records just appended, read by consumers that keep up
  // (consume/tail_cache.h); 0 turns it off.
  int64_t tail_cache_bytes = int64_t{32} << 20;
  absl::Duration store_wait = absl::Seconds(30);
  RequestLimits requests;
  StreamLimits streams;
  ha::HaOptions ha;
  std::string controller;  // empty: static roles
  // TLS of the etcd channels (--etcd_tls*); null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> etcd_credentials;
  bool forward_sends = true;          // relay sends to the writer (ha/send_forwarder.h)
  int64_t slave_read_lag_bytes = -1;  // ha/read_advisor.h; -1: 40% of RAM, 0: never
  std::string store_ha_endpoint;      // empty: <advertise host>:10912
  absl::Duration shutdown_grace = absl::Seconds(5);
  std::string version;  // reported by GetBrokerStatus
  // --auth, --auth_max_skew; --init_admin=USER:SECRET (the bootstrap super
  // user, empty: none); the credential this broker signs its NameServer
  // registrations with (--nameserver_access_key/secret).
  auth::AuthOptions auth;
  std::string init_admin;
  auth::Credential nameserver_credential;
};

// Splits a ';'-separated NameServer list, checking each host:port.
absl::StatusOr<std::vector<std::string>> ParseNameservers(const std::string& list);

// Checks names and ranges; errors name the flag and the allowed range.
absl::Status ValidateBrokerConfig(const BrokerConfig& config);

class BrokerApp {
 public:
  // Wires the modules, waits (up to store_wait) for the store, serves,
  // takes its role, registers and publishes its addresses.
  static absl::StatusOr<std::unique_ptr<BrokerApp>> Start(BrokerConfig config);
  ~BrokerApp();

  // Leaves gracefully: hands mastership over, deregisters, ends push
  // streams, lets calls finish (shutdown_grace), stops the tasks, drains
  // the workers. Idempotent; the destructor calls it.
  void Stop();

 private:
  struct Modules;
  explicit BrokerApp(BrokerConfig config);
  absl::Status Wire();
  absl::Status WaitForStore();
  absl::Status Serve();
  void StartTasks();

  BrokerConfig config_;
  std::unique_ptr<Modules> m_;
  bool serving_ = false;
  bool stopped_ = false;
};

}  // namespace apogee::broker
