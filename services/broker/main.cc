// apogee-broker: receives, stores (through its store sidecar), delivers.
// Speaks apache.rocketmq.v2 to official clients and apogee.admin.v1 to tools.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "services/broker/client/client_manager.h"
#include "services/broker/client/telemetry_hub.h"
#include "services/broker/consume/arrivals.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/delivery/assignment.h"
#include "services/broker/delivery/push_session.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/ha/controller_link.h"
#include "services/broker/ha/read_advisor.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/limits/request_limits.h"
#include "services/broker/metrics/probe.h"
#include "services/broker/offset/consumer_progress.h"
#include "services/broker/query/message_query.h"
#include "services/broker/route/registrar.h"
#include "services/broker/route/route_source.h"
#include "services/broker/service/admin_service.h"
#include "services/broker/service/messaging_service.h"
#include "services/broker/service/push_service.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/config/flags.h"
#include "services/common/metrics/exposer.h"
#include "services/common/naming/names.h"
#include "services/common/server/grpc_server.h"

ABSL_FLAG(std::string, cluster, "DefaultCluster", "Cluster this broker belongs to");
ABSL_FLAG(std::string, broker_name, "broker-a", "Broker group name (shared by master and slaves)");
ABSL_FLAG(int64_t, broker_id, 0, "0 for the master, 1, 2, ... for slaves");
ABSL_FLAG(std::string, nameservers, "127.0.0.1:9876",
          "NameServer addresses, ';'-separated like RocketMQ (empty: none)");
ABSL_FLAG(std::string, listen, "0.0.0.0:8081", "gRPC address for clients (host:port)");
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
ABSL_FLAG(bool, new_group_from_earliest, true,
          "A group with no committed offset starts at the oldest message (else the newest)");
ABSL_FLAG(int32_t, worker_threads, 8, "Threads for store calls (gRPC threads never block)");
ABSL_FLAG(absl::Duration, store_wait, absl::Seconds(30),
          "How long to wait for the store at start-up");
ABSL_FLAG(int64_t, max_request_bytes, apogee::broker::RequestLimits().max_request_bytes,
          "Largest request accepted, in bytes (gRPC rejects a larger one before buffering it)");
ABSL_FLAG(int64_t, max_inflight_bytes, apogee::broker::RequestLimits().max_inflight_bytes,
          "Bytes of SendMessage requests handled at once; more are answered TOO_MANY_REQUESTS");
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

}  // namespace

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  apogee::BlockTerminationSignals();
  apogee::InitFlags(argc, argv,
                    "apogee-broker --nameservers=HOST:PORT[;HOST:PORT] --store=unix:/path "
                    "[--config=FILE] [flags]");
  using namespace apogee;
  using namespace apogee::broker;

  BrokerIdentity identity;
  identity.cluster_name = absl::GetFlag(FLAGS_cluster);
  identity.broker_name = absl::GetFlag(FLAGS_broker_name);
  identity.broker_id = absl::GetFlag(FLAGS_broker_id);
  for (const absl::Status& s : {ValidateNodeName("--cluster", identity.cluster_name),
                                ValidateNodeName("--broker_name", identity.broker_name)}) {
    if (!s.ok()) return Fail(s);
  }
  if (identity.broker_id < 0) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--broker_id=", identity.broker_id, " is negative (0 is the master, slaves 1, 2, ...)")));
  }
  std::vector<std::string> nameservers;
  for (absl::string_view ns : absl::StrSplit(absl::GetFlag(FLAGS_nameservers), ';')) {
    ns = absl::StripAsciiWhitespace(ns);
    if (ns.empty()) continue;
    auto parsed = ParseHostPort("--nameservers entry", ns);
    if (!parsed.ok()) return Fail(parsed.status());
    nameservers.emplace_back(ns);
  }
  const int32_t queues = absl::GetFlag(FLAGS_default_queues);
  if (queues < 1 || queues > 1024) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--default_queues=", queues, " is out of range (allowed: 1..1024)")));
  }
  identity.auto_create_queues = absl::GetFlag(FLAGS_auto_create_topic) ? queues : 0;
  const int32_t attempts = absl::GetFlag(FLAGS_max_delivery_attempts);
  if (attempts < 1 || attempts > 1000) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--max_delivery_attempts=", attempts, " is out of range (allowed: 1..1000)")));
  }

  ha::HaOptions ha_options;
  {
    auto mode = ha::ParseReplicationMode("--replication", absl::GetFlag(FLAGS_replication));
    if (!mode.ok()) return Fail(mode.status());
    ha_options.mode = *mode;
    ha_options.min_insync_replicas = absl::GetFlag(FLAGS_min_insync_replicas);
    ha_options.replication_timeout = absl::GetFlag(FLAGS_replication_timeout);
    ha_options.master = absl::GetFlag(FLAGS_master);
    if (absl::Status s = ha::ValidateHaOptions(ha_options); !s.ok()) return Fail(s);
  }

  RequestLimits request_limits;
  request_limits.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  request_limits.max_inflight_bytes = absl::GetFlag(FLAGS_max_inflight_bytes);
  if (absl::Status s = ValidateRequestLimits(request_limits, MessageLimits().max_body_bytes);
      !s.ok()) {
    return Fail(s);
  }

  MapLargeBuffersOutsideTheHeap();

  const Clock* clock = RealClock::Default();
  StoreClient store(absl::GetFlag(FLAGS_store));
  TopicManager topics(&store, TopicOptions{absl::GetFlag(FLAGS_auto_create_topic), queues});
  GroupManager groups(&store);
  {
    // The store may start after us (same pod): wait for it, bounded.
    auto load = [&] {
      absl::Status s = topics.Load();
      return s.ok() ? groups.Load() : s;
    };
    const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_store_wait);
    absl::Status loaded = load();
    while (!loaded.ok() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
      loaded = load();
    }
    if (!loaded.ok()) {
      return Fail(absl::UnavailableError(absl::StrCat(
          "store at --store=", absl::GetFlag(FLAGS_store), " is not usable: ", loaded.message())));
    }
  }

  auto metrics_registry = std::make_shared<prometheus::Registry>();
  Probe probe(metrics_registry, identity.cluster_name,
              absl::StrCat(identity.broker_name, "-", identity.broker_id));
  auto metrics = MetricsEndpoint::Start(absl::GetFlag(FLAGS_metrics_listen), metrics_registry);
  if (!metrics.ok()) return Fail(metrics.status());

  // Stopped explicitly at shutdown, before the modules its tasks use go away.
  auto workers = std::make_unique<Executor>(absl::GetFlag(FLAGS_worker_threads));
  Executor& executor = *workers;
  Arrivals arrivals;
  ClientManager clients(clock, absl::Seconds(120));
  TelemetryHub telemetry;
  PopOptions pop_options;
  pop_options.max_delivery_attempts = attempts;
  pop_options.new_group_from_earliest = absl::GetFlag(FLAGS_new_group_from_earliest);
  PopEngine pop(&store, &topics, clock, pop_options);

  ha::RoleManager roles(identity, ha_options, &store, nameservers);
  ha::SendForwarder forwarder(identity, nameservers, &roles, &executor);
  int64_t slave_read_lag = absl::GetFlag(FLAGS_slave_read_lag_bytes);
  if (slave_read_lag < -1) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--slave_read_lag_bytes=", slave_read_lag,
                                                        " is out of range (allowed: -1, 0, 1..)")));
  }
  if (slave_read_lag == -1) slave_read_lag = ha::DefaultSlaveReadLagBytes();
  ha::ReadAdvisor read_advisor(
      slave_read_lag, identity.broker_id, [&store] { return store.GetReplicationStatus(); }, clock);
  ServiceOptions service_options;
  service_options.roles = &roles;
  if (absl::GetFlag(FLAGS_forward_sends)) service_options.forwarder = &forwarder;
  service_options.read_advisor = &read_advisor;
  service_options.broker_name = identity.broker_name;
  service_options.min_invisible = absl::GetFlag(FLAGS_min_invisible_time);
  service_options.settings.consumer_max_attempts = attempts;
  service_options.requests = request_limits;
  RouteSource routes(identity, nameservers, &topics);
  MessagingService messaging(service_options, &store, &topics, &groups, &pop, &arrivals, &clients,
                             &telemetry, &routes, &probe, &executor, clock);
  ConsumerProgress progress(&store, &topics, &groups, &clients, &pop, clock,
                            pop_options.new_group_from_earliest);
  MessageQuery query(&store, &topics);
  AdminService admin(AdminServiceDeps{&topics, &groups, &telemetry, &executor, &store, &pop,
                                      &progress, &query, clock, kVersion, clock->Now()});
  Membership push_members;
  PushDeps push_deps;
  push_deps.pop = &pop;
  push_deps.arrivals = &arrivals;
  push_deps.members = &push_members;
  push_deps.topics = &topics;
  push_deps.groups = &groups;
  push_deps.executor = &executor;
  push_deps.probe = &probe;
  push_deps.clock = clock;
  push_deps.broker_name = identity.broker_name;
  push_deps.store = &store;
  push_deps.read_advisor = &read_advisor;
  PushLimits push_limits;
  push_limits.min_ack_timeout = service_options.min_invisible;
  push_limits.max_ack_timeout = service_options.max_invisible;
  PushService push(push_deps, push_limits);

  GrpcServerOptions server_options;
  server_options.listen = absl::GetFlag(FLAGS_listen);
  server_options.max_receive_message_bytes = static_cast<int>(request_limits.max_request_bytes);
  auto server = GrpcServer::Start(server_options, {&messaging, &admin, &push});
  if (!server.ok()) return Fail(server.status());
  // With port 0 (tests) the real port is known only now; nothing can call
  // before the address is published below.
  std::string advertise = absl::GetFlag(FLAGS_advertise);
  if (advertise.empty()) {
    const std::string& bound = (*server)->bound_address();
    advertise = absl::StrCat("127.0.0.1:", bound.substr(bound.rfind(':') + 1));
  }
  if (auto parsed = ParseHostPort("--advertise", advertise); !parsed.ok()) {
    return Fail(parsed.status());
  }
  identity.client_endpoint = advertise;
  identity.ha_endpoint = absl::GetFlag(FLAGS_store_ha_endpoint);
  if (identity.ha_endpoint.empty()) {
    identity.ha_endpoint = absl::StrCat(ParseHostPort("--advertise", advertise)->host, ":10912");
  }
  if (auto parsed = ParseHostPort("--store_ha_endpoint", identity.ha_endpoint); !parsed.ok()) {
    return Fail(parsed.status());
  }
  messaging.SetAdvertisedAddress(advertise);
  routes.SetClientEndpoint(advertise);
  roles.SetClientEndpoint(advertise);
  forwarder.SetClientEndpoint(advertise);

  Registrar registrar(identity, nameservers, absl::GetFlag(FLAGS_heartbeat_interval),
                      [&topics] { return topics.List(); });
  topics.SetListener([&registrar] { registrar.TopicsChanged(); });
  admin.SetRegistration(identity, &registrar);
  admin.SetRoles(&roles);
  // Every role change re-registers (epoch, writer) and fixes local routes.
  roles.SetListener([&registrar, &routes](const ha::RoleState& state) {
    registrar.SetRole(state.epoch, state.accepts_writes);
    routes.SetWriter(state.accepts_writes);
  });
  // With a controller the group elects its master in etcd (this broker
  // refuses sends until told its role); else static roles (RocketMQ 4): id 0
  // is the master, others follow it.
  std::unique_ptr<ha::ControllerLink> controller;
  if (const std::string flag = absl::GetFlag(FLAGS_controller); !flag.empty()) {
    auto link = ha::ControllerLink::Create(flag, identity, &store, &roles);
    if (!link.ok()) return Fail(link.status());
    controller = std::move(link).value();
    controller->Start();
  } else if (absl::Status s = roles.StartStatic(); !s.ok()) {
    return Fail(absl::FailedPreconditionError(absl::StrCat(
        "cannot take the ", identity.broker_id == 0 ? "master" : "slave", " role: ", s.message())));
  }
  registrar.Start();

  PeriodicTask poll_timer(absl::Milliseconds(20), [&] { arrivals.ExpireDue(clock->Now()); });
  PeriodicTask reviver(absl::Milliseconds(200), [&] {
    // Revived messages are appended: only the writer's store takes them.
    if (!roles.AcceptsWrites()) return;
    for (const auto& [group, counts] : pop.ReviveExpired()) {
      probe.OnRetried(group, counts.retried);
      probe.OnDeadLettered(group, counts.dead_lettered);
      if (counts.retried > 0) arrivals.Notify(RetryTopic(group));
      if (counts.dead_lettered > 0) arrivals.Notify(DlqTopic(group));
    }
  });
  // A slave's store receives its master's topic and group configs: keep
  // the broker's copies (routes, reads) in step with it.
  PeriodicTask config_follower(absl::Seconds(1), [&] {
    if (roles.AcceptsWrites()) return;
    absl::Status topics_loaded = topics.Reload();
    absl::Status groups_loaded = groups.Reload();
    if (!topics_loaded.ok() || !groups_loaded.ok()) {
      std::fprintf(stderr, "event=config_reload_failed topics=\"%s\" groups=\"%s\"\n",
                   topics_loaded.ToString().c_str(), groups_loaded.ToString().c_str());
    }
  });
  // Large requests leave freed buffers in malloc's arenas: return them once
  // the broker is idle again.
  PeriodicTask trimmer(absl::Seconds(1), [&messaging, &probe] {
    const int64_t in_flight = messaging.inflight().InFlight();
    probe.SetRequestBytes(in_flight, messaging.inflight().limit());
    if (in_flight == 0) ReturnFreeMemory(8 << 20);
  });
  PeriodicTask housekeeping(absl::Seconds(5), [&] {
    clients.ExpireIdle();
    ClientCounts counts = clients.Counts();
    probe.SetConnections(counts.producers, counts.consumers);
    probe.SetInFlight(pop.InFlight());
    for (const auto& [key, lag] : progress.LagByGroupTopic()) {
      probe.SetConsumerLag(key.first, key.second, lag.messages,
                           absl::ToDoubleSeconds(lag.oldest_unconsumed));
    }
  });

  absl::Status published =
      PublishAddresses((*server)->bound_address(), (*metrics)->bound_address());
  if (!published.ok()) return Fail(published);
  std::fprintf(stderr, "event=started listen=%s advertise=%s store=%s nameservers=%zu metrics=%s\n",
               (*server)->bound_address().c_str(), advertise.c_str(),
               absl::GetFlag(FLAGS_store).c_str(), nameservers.size(),
               (*metrics)->bound_address().c_str());

  int signal_number = WaitForTerminationSignal();
  std::fprintf(stderr, "event=stopping signal=%d\n", signal_number);
  if (controller != nullptr) controller->Stop();  // a master's slaves take over now
  roles.Stop();
  registrar.Stop();  // NameServers drop this broker now, not after expiry
  push.Shutdown();   // push consumers reconnect elsewhere now, not after the grace
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  housekeeping.Stop();
  trimmer.Stop();
  reviver.Stop();
  config_follower.Stop();
  poll_timer.Stop();
  // Runs what is queued (e.g. a push delivery round) while the store client,
  // PopEngine and Arrivals still exist, then joins.
  workers.reset();
  std::fprintf(stderr, "event=stopped\n");
  return 0;
}
