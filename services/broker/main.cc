// apogee-broker: receives, stores (through its store sidecar), delivers.
// Speaks apache.rocketmq.v2 to official clients and apogee.admin.v1 to tools.
// The process itself is services/broker/app/broker_app.h; this file holds
// the flags and turns them into its BrokerConfig.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "services/broker/app/broker_app.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/config/flags.h"
#include "services/common/server/connection_flags.h"
#include "services/common/server/grpc_server.h"
#include "services/common/tls/flags.h"
#include "services/common/tls/tls.h"

ABSL_FLAG(std::string, cluster, "DefaultCluster", "Cluster this broker belongs to");
ABSL_FLAG(std::string, broker_name, "broker-a", "Broker group name (shared by master and slaves)");
ABSL_FLAG(int64_t, broker_id, 0, "0 for the master, 1, 2, ... for slaves");
ABSL_FLAG(std::string, nameservers, "127.0.0.1:9876",
          "NameServer addresses, ';'-separated like RocketMQ (empty: none)");
ABSL_FLAG(std::string, listen, "0.0.0.0:8081", "gRPC address for clients (host:port)");
ABSL_FLAG(std::string, admin_listen, "",
          "Separate address (host:port) for the admin API (apogee.admin.v1), e.g. on an "
          "operators' network; empty: served on --listen");
ABSL_FLAG(std::string, advertise, "",
          "host:port clients should use (DNS names allowed); default 127.0.0.1:<listen port>");
ABSL_FLAG(std::string, store, "unix:/tmp/apogee-store.sock",
          "Store sidecar address: unix:/path or host:port");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:8082",
          "Prometheus /metrics address (host:port); empty disables it");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(30),
          "How often to refresh the registration with every NameServer");
ABSL_FLAG(bool, auto_create_topic, true, "Create unknown topics on first send or route query");
ABSL_FLAG(int32_t, default_queues, 8, "Queues of an auto-created topic");
ABSL_FLAG(int32_t, max_delivery_attempts, 17,
          "Deliveries of a message before it goes to the group's DLQ (16 retries + 1)");
ABSL_FLAG(absl::Duration, min_invisible_time, absl::Seconds(10),
          "Smallest invisible_duration a ReceiveMessage may ask for");
ABSL_FLAG(absl::Duration, max_delivery_delay, absl::Hours(24 * 30),
          "Latest delivery_timestamp a delayed message may ask for, from now (1s..366d)");
ABSL_FLAG(absl::Duration, transaction_check_delay, absl::Seconds(6),
          "Age of an unresolved half message at its first check-back (100ms..1h)");
ABSL_FLAG(absl::Duration, transaction_check_interval, absl::Seconds(60),
          "Time between check-backs of an unresolved half message (100ms..1h)");
ABSL_FLAG(int32_t, transaction_check_max, 15,
          "Check-backs before a half message goes to TRANS_CHECK_MAX_TIME_TOPIC (1..100)");
ABSL_FLAG(bool, new_group_from_earliest, true,
          "A group with no committed offset starts at the oldest message (else the newest)");
ABSL_FLAG(int32_t, worker_threads, 8, "Threads for store calls (gRPC threads never block)");
ABSL_FLAG(int64_t, tail_cache_bytes, int64_t{32} << 20,
          "Bytes of just-appended records kept for consumers that keep up (0: off)");
ABSL_FLAG(absl::Duration, store_wait, absl::Seconds(30),
          "How long to wait for the store at start-up");
ABSL_FLAG(int64_t, max_request_bytes, apogee::broker::RequestLimits().max_request_bytes,
          "Largest request accepted, in bytes (gRPC rejects a larger one before buffering it)");
ABSL_FLAG(int64_t, max_inflight_bytes, apogee::broker::RequestLimits().max_inflight_bytes,
          "Bytes of SendMessage requests handled at once; more are answered TOO_MANY_REQUESTS");
ABSL_FLAG(int32_t, max_telemetry_streams, apogee::broker::StreamLimits().max_telemetry_streams,
          "Open Telemetry streams (all clients); more end RESOURCE_EXHAUSTED (1..1000000)");
ABSL_FLAG(int32_t, max_telemetry_streams_per_client,
          apogee::broker::StreamLimits().max_telemetry_streams_per_client,
          "Open Telemetry streams per x-mq-client-id (1..--max_telemetry_streams)");
ABSL_FLAG(int32_t, max_push_streams, apogee::broker::StreamLimits().max_push_streams,
          "Open push Consume streams (all clients); more end RESOURCE_EXHAUSTED (1..1000000)");
ABSL_FLAG(int32_t, max_push_streams_per_client,
          apogee::broker::StreamLimits().max_push_streams_per_client,
          "Subscribed push streams per Subscribe.client_id (1..--max_push_streams)");
ABSL_FLAG(std::string, replication, "async",
          "How a master acknowledges sends: async (once its store holds them) or sync (also "
          "--min_insync_replicas in-sync slaves)");
ABSL_FLAG(int32_t, min_insync_replicas, 1,
          "sync replication: in-sync slaves that must hold a send before it is acknowledged");
ABSL_FLAG(absl::Duration, replication_timeout, absl::Seconds(3),
          "sync replication: how long a send waits for its slaves before "
          "SLAVE_PERSISTENCE_TIMEOUT");
ABSL_FLAG(std::string, controller, "",
          "Automatic failover: etcd:HOST:PORT[;HOST:PORT...] (the group elects its master there); "
          "empty keeps static roles (id 0 is the master)");
ABSL_FLAG(bool, etcd_tls, false,
          "Dial the --controller etcd over TLS; implied by --etcd_tls_ca and --etcd_tls_cert");
ABSL_FLAG(std::string, etcd_tls_ca, "",
          "PEM CA bundle that signs etcd's server certificates (default: system roots)");
ABSL_FLAG(std::string, etcd_tls_cert, "",
          "PEM client certificate for an etcd with --client-cert-auth (its CN is the etcd user)");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key of --etcd_tls_cert");
ABSL_FLAG(bool, forward_sends, true,
          "relay v2 sends that reach a broker which is not its group's writer to the writer "
          "(official clients cache the endpoints they publish to; this keeps them writing "
          "through a failover); false answers HA_NOT_AVAILABLE instead");
ABSL_FLAG(std::string, master, "",
          "Slaves: the master store's HA endpoint (host:port); default: found through the "
          "NameServers");
ABSL_FLAG(std::string, store_ha_endpoint, "",
          "host:port where other stores reach this broker's store's HA port (registered as "
          "ha_endpoint); default <advertise host>:10912");
ABSL_FLAG(int64_t, slave_read_lag_bytes, -1,
          "A pull reading data further behind the commit-log head than this is told to read the "
          "queue from an in-sync slave (and a slave sends readers within half of it back); "
          "-1: 40% of this machine's RAM (data that far back has likely left the page cache), "
          "0: never");
ABSL_FLAG(bool, auth, false,
          "Authenticate (v2 signatures) and authorize (ACLs) every client and admin call");
ABSL_FLAG(std::string, init_admin, "",
          "USER:SECRET of the bootstrap super user (needed with --auth; never stored)");
ABSL_FLAG(absl::Duration, auth_max_skew, absl::Minutes(15),
          "--auth: how far a signed x-mq-date-time may be from this broker's clock");
ABSL_FLAG(std::string, nameserver_access_key, "",
          "User this broker signs its NameServer registrations as (default: --init_admin's)");
ABSL_FLAG(std::string, nameserver_access_secret, "", "Secret of --nameserver_access_key");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long in-flight calls may take before they are cancelled");

namespace {

// From the build: CMake's project version (bazel/version.bzl for Bazel).
#ifndef APOGEE_VERSION
#error "APOGEE_VERSION is not defined: the build passes it (CMakeLists.txt, BUILD)"
#endif
constexpr char kVersion[] = APOGEE_VERSION;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "apogee-broker: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<apogee::broker::BrokerConfig> ConfigFromFlags() {
  using namespace apogee::broker;
  BrokerConfig c;
  c.identity.cluster_name = absl::GetFlag(FLAGS_cluster);
  c.identity.broker_name = absl::GetFlag(FLAGS_broker_name);
  c.identity.broker_id = absl::GetFlag(FLAGS_broker_id);
  auto nameservers = ParseNameservers(absl::GetFlag(FLAGS_nameservers));
  if (!nameservers.ok()) return nameservers.status();
  c.nameservers = std::move(nameservers).value();
  c.listen = absl::GetFlag(FLAGS_listen);
  auto credentials = apogee::tls::ServerCredentialsFromFlags();
  if (!credentials.ok()) return credentials.status();
  c.credentials = *credentials;
  c.admin_listen = absl::GetFlag(FLAGS_admin_listen);
  auto connections = apogee::ConnectionLimitsFromFlags();
  if (!connections.ok()) return connections.status();
  c.connections = *connections;
  c.advertise = absl::GetFlag(FLAGS_advertise);
  c.store = absl::GetFlag(FLAGS_store);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  c.auto_create_topic = absl::GetFlag(FLAGS_auto_create_topic);
  c.default_queues = absl::GetFlag(FLAGS_default_queues);
  c.max_delivery_attempts = absl::GetFlag(FLAGS_max_delivery_attempts);
  c.min_invisible_time = absl::GetFlag(FLAGS_min_invisible_time);
  c.max_delivery_delay = absl::GetFlag(FLAGS_max_delivery_delay);
  c.transaction_check_delay = absl::GetFlag(FLAGS_transaction_check_delay);
  c.transaction_check_interval = absl::GetFlag(FLAGS_transaction_check_interval);
  c.transaction_check_max = absl::GetFlag(FLAGS_transaction_check_max);
  c.new_group_from_earliest = absl::GetFlag(FLAGS_new_group_from_earliest);
  c.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  c.tail_cache_bytes = absl::GetFlag(FLAGS_tail_cache_bytes);
  c.store_wait = absl::GetFlag(FLAGS_store_wait);
  c.requests.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  c.requests.max_inflight_bytes = absl::GetFlag(FLAGS_max_inflight_bytes);
  c.streams.max_telemetry_streams = absl::GetFlag(FLAGS_max_telemetry_streams);
  c.streams.max_telemetry_streams_per_client =
      absl::GetFlag(FLAGS_max_telemetry_streams_per_client);
  c.streams.max_push_streams = absl::GetFlag(FLAGS_max_push_streams);
  c.streams.max_push_streams_per_client = absl::GetFlag(FLAGS_max_push_streams_per_client);
  auto mode = ha::ParseReplicationMode("--replication", absl::GetFlag(FLAGS_replication));
  if (!mode.ok()) return mode.status();
  c.ha.mode = *mode;
  c.ha.min_insync_replicas = absl::GetFlag(FLAGS_min_insync_replicas);
  c.ha.replication_timeout = absl::GetFlag(FLAGS_replication_timeout);
  c.ha.master = absl::GetFlag(FLAGS_master);
  c.controller = absl::GetFlag(FLAGS_controller);
  // etcd has its own CA and users, hence flags of its own (not --client_tls*).
  apogee::tls::ClientTls etcd_tls;
  etcd_tls.ca_file = absl::GetFlag(FLAGS_etcd_tls_ca);
  etcd_tls.cert_file = absl::GetFlag(FLAGS_etcd_tls_cert);
  etcd_tls.key_file = absl::GetFlag(FLAGS_etcd_tls_key);
  etcd_tls.enabled = absl::GetFlag(FLAGS_etcd_tls) || !etcd_tls.ca_file.empty() ||
                     !etcd_tls.cert_file.empty() || !etcd_tls.key_file.empty();
  etcd_tls.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  if (etcd_tls.enabled) {
    auto etcd_credentials = apogee::tls::ChannelCredentials(
        etcd_tls, {"--etcd_tls_cert", "--etcd_tls_key", "--etcd_tls_ca"});
    if (!etcd_credentials.ok()) return etcd_credentials.status();
    c.etcd_credentials = *etcd_credentials;
  }
  c.forward_sends = absl::GetFlag(FLAGS_forward_sends);
  c.slave_read_lag_bytes = absl::GetFlag(FLAGS_slave_read_lag_bytes);
  c.store_ha_endpoint = absl::GetFlag(FLAGS_store_ha_endpoint);
  c.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  c.version = kVersion;
  c.auth.enabled = absl::GetFlag(FLAGS_auth);
  c.auth.max_skew = absl::GetFlag(FLAGS_auth_max_skew);
  c.init_admin = absl::GetFlag(FLAGS_init_admin);
  c.nameserver_credential = {absl::GetFlag(FLAGS_nameserver_access_key),
                             absl::GetFlag(FLAGS_nameserver_access_secret)};
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  apogee::BlockTerminationSignals();
  apogee::InitFlags(argc, argv,
                    "apogee-broker --nameservers=HOST:PORT[;HOST:PORT] --store=unix:/path "
                    "[--config=FILE] [flags]");
  auto config = ConfigFromFlags();
  if (!config.ok()) return Fail(config.status());
  // NameServers, a TCP store and peer brokers are dialled with --client_tls*.
  if (absl::Status s = apogee::tls::ApplyClientTlsFlags(); !s.ok()) return Fail(s);
  auto app = apogee::broker::BrokerApp::Start(std::move(config).value());
  if (!app.ok()) return Fail(app.status());
  int signal_number = apogee::WaitForTerminationSignal();
  std::fprintf(stderr, "event=stopping signal=%d\n", signal_number);
  (*app)->Stop();
  std::fprintf(stderr, "event=stopped\n");
  return 0;
}
