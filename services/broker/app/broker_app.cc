#include "services/broker/app/broker_app.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "services/broker/auth/user_registry.h"
#include "services/broker/client/client_manager.h"
#include "services/broker/client/telemetry_hub.h"
#include "services/broker/consume/arrivals.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/delivery/assignment.h"
#include "services/broker/delivery/push_session.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/ha/controller_link.h"
#include "services/broker/ha/read_advisor.h"
#include "services/broker/ha/send_forwarder.h"
#include "services/broker/metrics/probe.h"
#include "services/broker/offset/consumer_progress.h"
#include "services/broker/query/message_query.h"
#include "services/broker/route/route_source.h"
#include "services/broker/service/admin_service.h"
#include "services/broker/service/messaging_service.h"
#include "services/broker/service/push_service.h"
#include "services/broker/service/receive_service.h"
#include "services/broker/store_client/queue_watcher.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/broker/transaction/coordinator.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/config/flags.h"
#include "services/common/metrics/exposer.h"
#include "services/common/naming/names.h"
#include "services/common/server/grpc_server.h"
#include "services/common/server/reflection.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {

// Declared in construction order; destroyed in reverse.
struct BrokerApp::Modules {
  const Clock* clock = RealClock::Default();
  std::unique_ptr<StoreClient> store;
  std::unique_ptr<TopicManager> topics;
  std::unique_ptr<GroupManager> groups;
  std::unique_ptr<UserRegistry> users;
  std::unique_ptr<auth::Authenticator> auth;
  std::shared_ptr<prometheus::Registry> metrics_registry;
  std::unique_ptr<Probe> probe;
  std::unique_ptr<MetricsEndpoint> metrics;
  std::unique_ptr<Executor> workers;  // drained by Stop, before what its tasks use goes
  std::unique_ptr<Arrivals> arrivals;
  std::unique_ptr<ClientManager> clients;
  std::unique_ptr<TelemetryHub> telemetry;
  std::unique_ptr<TailCache> tail;  // null: off
  std::unique_ptr<PopEngine> pop;
  std::unique_ptr<TransactionCoordinator> transactions;
  std::unique_ptr<ha::RoleManager> roles;
  std::unique_ptr<ha::SendForwarder> forwarder;
  std::unique_ptr<ha::ReadAdvisor> read_advisor;
  std::unique_ptr<RouteSource> routes;
  std::unique_ptr<MessagingService> messaging;
  std::unique_ptr<ReceiveService> receive;
  std::unique_ptr<ConsumerProgress> progress;
  std::unique_ptr<MessageQuery> query;
  std::unique_ptr<AdminService> admin;
  std::unique_ptr<Membership> push_members;
  std::unique_ptr<PushService> push;
  std::unique_ptr<GrpcServer> server;
  std::unique_ptr<GrpcServer> admin_server;  // --admin_listen only
  std::unique_ptr<Registrar> registrar;
  std::unique_ptr<ha::ControllerLink> controller;
  std::vector<std::unique_ptr<PeriodicTask>> tasks;
  std::unique_ptr<QueueWatcher> queue_watcher;  // wakes polls for fired delayed messages
};

absl::StatusOr<std::vector<std::string>> ParseNameservers(const std::string& list) {
  std::vector<std::string> nameservers;
  for (absl::string_view ns : absl::StrSplit(list, ';')) {
    ns = absl::StripAsciiWhitespace(ns);
    if (ns.empty()) continue;
    APOGEE_RETURN_IF_ERROR(ParseHostPort("--nameservers entry", ns).status());
    nameservers.emplace_back(ns);
  }
  return nameservers;
}

absl::Status ValidateBrokerConfig(const BrokerConfig& config) {
  APOGEE_RETURN_IF_ERROR(ValidateNodeName("--cluster", config.identity.cluster_name));
  APOGEE_RETURN_IF_ERROR(ValidateNodeName("--broker_name", config.identity.broker_name));
  if (config.identity.broker_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--broker_id=", config.identity.broker_id,
                     " is negative (0 is the master, slaves 1, 2, ...)"));
  }
  if (config.slave_read_lag_bytes < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--slave_read_lag_bytes=", config.slave_read_lag_bytes,
                     " is out of range (allowed: -1, 0, 1..)"));
  }
  if (config.tail_cache_bytes < 0 || config.tail_cache_bytes > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tail_cache_bytes=", config.tail_cache_bytes,
                     " is out of range (allowed: 0 (off)..1099511627776)"));
  }
  if (config.default_queues < 1 || config.default_queues > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--default_queues=", config.default_queues,
                                                   " is out of range (allowed: 1..1024)"));
  }
  if (config.max_delivery_attempts < 1 || config.max_delivery_attempts > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_delivery_attempts=", config.max_delivery_attempts,
                     " is out of range (allowed: 1..1000)"));
  }
  if (config.max_delivery_delay < absl::Seconds(1) ||
      config.max_delivery_delay > absl::Hours(24 * 366)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_delivery_delay=", absl::FormatDuration(config.max_delivery_delay),
                     " is out of range (allowed: 1s..366d)"));
  }
  APOGEE_RETURN_IF_ERROR(CheckDurationFlag("--transaction_check_delay",
                                           config.transaction_check_delay, absl::Milliseconds(100),
                                           absl::Hours(1)));
  APOGEE_RETURN_IF_ERROR(CheckDurationFlag("--transaction_check_interval",
                                           config.transaction_check_interval,
                                           absl::Milliseconds(100), absl::Hours(1)));
  if (config.transaction_check_max < 1 || config.transaction_check_max > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("--transaction_check_max=", config.transaction_check_max,
                     " is out of range (allowed: 1..100)"));
  }
  if (config.auth.enabled && config.init_admin.empty()) {
    return absl::InvalidArgumentError(
        "--auth=true needs --init_admin=USER:SECRET (the first super user)");
  }
  if (!config.init_admin.empty()) {
    APOGEE_RETURN_IF_ERROR(auth::ParseInitAdmin("init_admin", config.init_admin).status());
  }
  if (config.auth.max_skew <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auth_max_skew=", absl::FormatDuration(config.auth.max_skew), " must be positive"));
  }
  // Port 0 (a free port, for tests) is allowed, so no ParseHostPort.
  if (!config.admin_listen.empty() &&
      (config.admin_listen.rfind(':') == std::string::npos || config.admin_listen.back() == ':')) {
    return absl::InvalidArgumentError(absl::StrCat("--admin_listen=", config.admin_listen,
                                                   " is not host:port (empty: admin on --listen)"));
  }
  APOGEE_RETURN_IF_ERROR(ValidateStreamLimits(config.streams));
  APOGEE_RETURN_IF_ERROR(ha::ValidateHaOptions(config.ha));
  return ValidateRequestLimits(config.requests, MessageLimits().max_body_bytes);
}

BrokerApp::BrokerApp(BrokerConfig config)
    : config_(std::move(config)), m_(std::make_unique<Modules>()) {}

BrokerApp::~BrokerApp() { Stop(); }

absl::StatusOr<std::unique_ptr<BrokerApp>> BrokerApp::Start(BrokerConfig config) {
  APOGEE_RETURN_IF_ERROR(ValidateBrokerConfig(config));
  MapLargeBuffersOutsideTheHeap();
  std::unique_ptr<BrokerApp> app(new BrokerApp(std::move(config)));
  APOGEE_RETURN_IF_ERROR(app->Wire());
  APOGEE_RETURN_IF_ERROR(app->Serve());
  return app;
}

absl::Status BrokerApp::WaitForStore() {
  // The store may start after us (same pod): wait for it, bounded.
  auto load = [this] {
    absl::Status s = m_->topics->Load();
    if (s.ok()) s = m_->groups->Load();
    return s.ok() ? m_->users->Reload() : s;
  };
  const absl::Time deadline = absl::Now() + config_.store_wait;
  absl::Status loaded = load();
  while (!loaded.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    loaded = load();
  }
  if (!loaded.ok()) {
    return absl::UnavailableError(
        absl::StrCat("store at --store=", config_.store, " is not usable: ", loaded.message()));
  }
  return absl::OkStatus();
}

absl::Status BrokerApp::Wire() {
  Modules& m = *m_;
  const BrokerIdentity& identity = config_.identity;
  m.store = std::make_unique<StoreClient>(config_.store);
  m.topics = std::make_unique<TopicManager>(
      m.store.get(), TopicOptions{config_.auto_create_topic, config_.default_queues});
  m.groups = std::make_unique<GroupManager>(m.store.get());
  std::optional<auth::User> bootstrap;
  if (!config_.init_admin.empty()) {
    APOGEE_ASSIGN_OR_RETURN(bootstrap, auth::ParseInitAdmin("init_admin", config_.init_admin));
  }
  m.users = std::make_unique<UserRegistry>(m.store.get(), std::move(bootstrap));
  m.auth = std::make_unique<auth::Authenticator>(config_.auth, m.users.get(), m.clock);
  APOGEE_RETURN_IF_ERROR(WaitForStore());

  m.metrics_registry = std::make_shared<prometheus::Registry>();
  m.probe = std::make_unique<Probe>(m.metrics_registry, identity.cluster_name,
                                    absl::StrCat(identity.broker_name, "-", identity.broker_id));
  APOGEE_ASSIGN_OR_RETURN(m.metrics,
                          MetricsEndpoint::Start(config_.metrics_listen, m.metrics_registry));
  m.workers = std::make_unique<Executor>(config_.worker_threads);
  m.arrivals = std::make_unique<Arrivals>();
  m.clients = std::make_unique<ClientManager>(m.clock, absl::Seconds(120));
  m.telemetry = std::make_unique<TelemetryHub>();
  PopOptions pop_options;
  pop_options.max_delivery_attempts = config_.max_delivery_attempts;
  pop_options.new_group_from_earliest = config_.new_group_from_earliest;
  pop_options.fifo_group = [groups = m.groups.get()](const std::string& group) {
    return groups->Get(group).fifo();
  };
  pop_options.fifo_unblocked = [arrivals = m.arrivals.get()](const std::string& topic) {
    arrivals->Notify(topic);
  };
  if (config_.tail_cache_bytes > 0) {
    m.tail = std::make_unique<TailCache>(config_.tail_cache_bytes);
    pop_options.tail = m.tail.get();
  }
  m.pop = std::make_unique<PopEngine>(m.store.get(), m.topics.get(), m.clock, pop_options);
  TransactionOptions txn;
  txn.broker_name = identity.broker_name;
  txn.check_delay = config_.transaction_check_delay;
  txn.check_interval = config_.transaction_check_interval;
  txn.check_max = config_.transaction_check_max;
  m.transactions = std::make_unique<TransactionCoordinator>(
      txn, m.store.get(),
      [clients = m.clients.get(), telemetry = m.telemetry.get()](const std::string& topic,
                                                                 v2::TelemetryCommand command) {
        // Any live producer of the topic may answer (RocketMQ 5: the
        // producer group is the topic's producers).
        for (const std::string& id : clients->ProducersOf(topic)) {
          if (telemetry->Send(id, command)) return true;
        }
        return false;
      },
      m.clock, m.metrics_registry.get());
  m.roles =
      std::make_unique<ha::RoleManager>(identity, config_.ha, m.store.get(), config_.nameservers);
  m.routes = std::make_unique<RouteSource>(identity, config_.nameservers, m.topics.get());

  ha::ForwardOptions forward;
  // Only a controller promotes a new writer: with static roles a send that
  // finds no writer fails at once instead of waiting for one.
  if (config_.controller.empty()) forward.max_hold = absl::ZeroDuration();
  m.forwarder = std::make_unique<ha::SendForwarder>(identity, config_.nameservers, m.roles.get(),
                                                    m.workers.get(), forward);
  const int64_t slave_read_lag = config_.slave_read_lag_bytes == -1 ? ha::DefaultSlaveReadLagBytes()
                                                                    : config_.slave_read_lag_bytes;
  StoreClient* store = m.store.get();
  m.read_advisor = std::make_unique<ha::ReadAdvisor>(
      slave_read_lag, identity.broker_id, [store] { return store->GetReplicationStatus(); },
      m.clock);

  ServiceOptions options;
  options.roles = m.roles.get();
  if (config_.forward_sends) options.forwarder = m.forwarder.get();
  options.read_advisor = m.read_advisor.get();
  options.broker_name = identity.broker_name;
  options.min_invisible = config_.min_invisible_time;
  options.limits.max_delivery_delay = config_.max_delivery_delay;
  options.settings.consumer_max_attempts = config_.max_delivery_attempts;
  options.requests = config_.requests;
  options.streams = config_.streams;
  MessagingServiceDeps messaging;
  messaging.store = m.store.get();
  messaging.topics = m.topics.get();
  messaging.groups = m.groups.get();
  messaging.pop = m.pop.get();
  messaging.arrivals = m.arrivals.get();
  messaging.clients = m.clients.get();
  messaging.telemetry = m.telemetry.get();
  messaging.routes = m.routes.get();
  messaging.probe = m.probe.get();
  messaging.executor = m.workers.get();
  messaging.clock = m.clock;
  messaging.auth = m.auth.get();
  messaging.transactions = m.transactions.get();
  messaging.tail = m.tail.get();
  m.messaging = std::make_unique<MessagingService>(options, messaging);
  m.receive = std::make_unique<ReceiveService>(m.messaging.get(), PushLimits().max_frame_bytes);

  m.progress = std::make_unique<ConsumerProgress>(m.store.get(), m.topics.get(), m.groups.get(),
                                                  m.clients.get(), m.pop.get(), m.clock,
                                                  pop_options.new_group_from_earliest);
  m.query = std::make_unique<MessageQuery>(m.store.get(), m.topics.get());
  AdminServiceDeps admin;
  admin.topics = m.topics.get();
  admin.groups = m.groups.get();
  admin.telemetry = m.telemetry.get();
  admin.executor = m.workers.get();
  admin.store = m.store.get();
  admin.pop = m.pop.get();
  admin.progress = m.progress.get();
  admin.query = m.query.get();
  admin.clock = m.clock;
  admin.version = config_.version;
  admin.start_time = m.clock->Now();
  admin.users = m.users.get();
  admin.auth = m.auth.get();
  admin.transactions = m.transactions.get();
  m.admin = std::make_unique<AdminService>(admin);

  m.push_members = std::make_unique<Membership>();
  PushDeps push;
  push.pop = m.pop.get();
  push.arrivals = m.arrivals.get();
  push.members = m.push_members.get();
  push.topics = m.topics.get();
  push.groups = m.groups.get();
  push.executor = m.workers.get();
  push.probe = m.probe.get();
  push.clock = m.clock;
  push.broker_name = identity.broker_name;
  push.store = m.store.get();
  push.read_advisor = m.read_advisor.get();
  PushLimits push_limits;
  push_limits.min_ack_timeout = options.min_invisible;
  push_limits.max_ack_timeout = options.max_invisible;
  m.push = std::make_unique<PushService>(push, push_limits, m.auth.get(), config_.streams);
  return absl::OkStatus();
}

absl::Status BrokerApp::Serve() {
  Modules& m = *m_;
  BrokerIdentity& identity = config_.identity;
  GrpcServerOptions server_options;
  server_options.listen = config_.listen;
  server_options.credentials = config_.credentials;
  server_options.max_receive_message_bytes = static_cast<int>(config_.requests.max_request_bytes);
  server_options.connections = config_.connections;
  // The store client's append stream runs on the server's completion queue,
  // so the poller that reads the store's answer finishes the SendMessage.
  server_options.queue_users = {m.store.get()};
  // The store's WatchQueues stream on the same queue (no thread of its own).
  m.queue_watcher = std::make_unique<QueueWatcher>(
      m.store.get(),
      [&m](const std::string& topic, int32_t queue) { m.arrivals->Notify(topic, queue); },
      // The tail cache is trusted only while the store that acknowledged
      // its copies is the one answering (a restarted store may have lost an
      // unflushed tail and reuse its offsets).
      [tail = m.tail.get()](bool up) {
        if (tail != nullptr) tail->SetLive(up);
      });
  server_options.queue_users.push_back(m.queue_watcher.get());
  std::vector<grpc::Service*> client_services = {m.messaging.get(), m.receive.get(), m.push.get()};
  // --admin_listen keeps the admin API off the client address.
  if (config_.admin_listen.empty()) client_services.push_back(m.admin.get());
  EnableServerReflection();
  APOGEE_ASSIGN_OR_RETURN(m.server, GrpcServer::Start(server_options, client_services));
  if (!config_.admin_listen.empty()) {
    GrpcServerOptions admin_options = server_options;
    admin_options.queue_users.clear();
    admin_options.listen = config_.admin_listen;
    admin_options.listen_flag = "--admin_listen";
    APOGEE_ASSIGN_OR_RETURN(m.admin_server, GrpcServer::Start(admin_options, {m.admin.get()}));
  }
  const std::string admin_address =
      m.admin_server != nullptr ? m.admin_server->bound_address() : "";
  // With port 0 (tests) the real port is known only now; nothing can call
  // before the address is published below.
  std::string advertise = config_.advertise;
  if (advertise.empty()) {
    const std::string& bound = m.server->bound_address();
    advertise = absl::StrCat("127.0.0.1:", bound.substr(bound.rfind(':') + 1));
  }
  APOGEE_ASSIGN_OR_RETURN(HostPort advertised, ParseHostPort("--advertise", advertise));
  identity.client_endpoint = advertise;
  // Registered so NameServers route unknown topics to auto-creating groups.
  identity.auto_create_queues = config_.auto_create_topic ? config_.default_queues : 0;
  identity.ha_endpoint = config_.store_ha_endpoint;
  if (identity.ha_endpoint.empty()) identity.ha_endpoint = absl::StrCat(advertised.host, ":10912");
  APOGEE_RETURN_IF_ERROR(ParseHostPort("--store_ha_endpoint", identity.ha_endpoint).status());
  m.messaging->SetAdvertisedAddress(advertise);
  m.routes->SetClientEndpoint(advertise);
  m.roles->SetClientEndpoint(advertise);
  m.forwarder->SetClientEndpoint(advertise);

  TopicManager* topics = m.topics.get();
  m.registrar =
      std::make_unique<Registrar>(identity, config_.nameservers, config_.heartbeat_interval,
                                  [topics] { return topics->List(); });
  auth::Credential ns_credential = config_.nameserver_credential;
  if (ns_credential.empty() && !config_.init_admin.empty()) {
    // Default: register as the bootstrap admin (the same on every node).
    auto admin = auth::ParseInitAdmin("init_admin", config_.init_admin);
    if (admin.ok()) ns_credential = {admin->name, admin->secret};
  }
  if (!ns_credential.empty()) {
    m.registrar->SetSessionDecorator([ns_credential](grpc::ClientContext* context) {
      auth::SignCall(context, ns_credential, absl::Now());
    });
  }
  Registrar* registrar = m.registrar.get();
  RouteSource* routes = m.routes.get();
  m.topics->SetListener([registrar] { registrar->TopicsChanged(); });
  m.admin->SetRegistration(identity, registrar);
  m.admin->SetRoles(m.roles.get());
  // Every role change re-registers (epoch, writer) and fixes local routes.
  m.roles->SetListener([registrar, routes, tail = m.tail.get()](const ha::RoleState& state) {
    // A new writer may have replaced the tail this broker copied.
    if (tail != nullptr) tail->Clear();
    registrar->SetRole(state.epoch, state.accepts_writes);
    routes->SetWriter(state.accepts_writes);
  });
  // With a controller the group elects its master in etcd (this broker
  // refuses sends until told its role); else static roles (RocketMQ 4): id 0
  // is the master, others follow it.
  if (!config_.controller.empty()) {
    APOGEE_ASSIGN_OR_RETURN(m.controller,
                            ha::ControllerLink::Create(config_.controller, config_.etcd_credentials,
                                                       identity, m.store.get(), m.roles.get()));
    m.controller->Start();
  } else if (absl::Status s = m.roles->StartStatic(); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot take the ", identity.broker_id == 0 ? "master" : "slave", " role: ", s.message()));
  }
  m.registrar->Start();
  StartTasks();

  APOGEE_RETURN_IF_ERROR(
      PublishAddresses(m.server->bound_address(), m.metrics->bound_address(), admin_address));
  std::fprintf(stderr,
               "event=started listen=%s advertise=%s store=%s nameservers=%zu metrics=%s "
               "admin=%s\n",
               m.server->bound_address().c_str(), advertise.c_str(), config_.store.c_str(),
               config_.nameservers.size(), m.metrics->bound_address().c_str(),
               admin_address.empty() ? "listen" : admin_address.c_str());
  serving_ = true;
  return absl::OkStatus();
}

void BrokerApp::StartTasks() {
  Modules& m = *m_;
  auto every = [&m](absl::Duration interval, std::function<void()> fn) {
    m.tasks.push_back(std::make_unique<PeriodicTask>(interval, std::move(fn)));
  };
  every(absl::Milliseconds(20), [&m] { m.arrivals->ExpireDue(m.clock->Now()); });
  every(absl::Milliseconds(200), [&m] {
    // Revived messages are appended: only the writer's store takes them.
    if (!m.roles->AcceptsWrites()) return;
    for (const auto& [group, counts] : m.pop->ReviveExpired()) {
      m.probe->OnRetried(group, counts.retried);
      m.probe->OnDeadLettered(group, counts.dead_lettered);
      m.probe->OnFifoRedelivered(group, counts.redelivered);
      if (counts.retried > 0) m.arrivals->Notify(RetryTopic(group));
      if (counts.dead_lettered > 0) m.arrivals->Notify(DlqTopic(group));
    }
  });
  // Orphaned half messages: check back with a producer, discard after the
  // maximum (only the writer resolves).
  const absl::Duration check_period =
      std::clamp(std::min(config_.transaction_check_delay, config_.transaction_check_interval) / 2,
                 absl::Milliseconds(50), absl::Seconds(1));
  every(check_period, [&m] {
    if (!m.roles->AcceptsWrites()) return;
    for (int pass = 0; pass < 10; ++pass) {  // bounded: the next tick goes on
      absl::StatusOr<CheckReport> report = m.transactions->CheckDue();
      if (!report.ok() || !report->more) return;
    }
  });
  every(absl::Seconds(1), [&m] {
    // FIFO gauges per consumer group, summed over its ordered cursors.
    std::map<std::string, std::array<int64_t, 3>> fifo;
    for (const PopEngine::QueueProgress& q : m.pop->Progress()) {
      if (!q.ordered) continue;
      std::array<int64_t, 3>& sums = fifo[q.group];
      sums[0] += q.busy_message_groups;
      sums[1] += q.blocked_message_groups;
      sums[2] += q.waiting;
    }
    for (const auto& [group, sums] : fifo) m.probe->SetFifo(group, sums[0], sums[1], sums[2]);
  });
  // A slave's store receives its master's topic and group configs: keep
  // the broker's copies (routes, reads) in step with it.
  every(absl::Seconds(1), [&m] {
    if (m.roles->AcceptsWrites()) return;
    absl::Status topics_loaded = m.topics->Reload();
    absl::Status groups_loaded = m.groups->Reload();
    absl::Status users_loaded = m.users->Reload();
    if (!topics_loaded.ok() || !groups_loaded.ok() || !users_loaded.ok()) {
      std::fprintf(stderr, "event=config_reload_failed topics=\"%s\" groups=\"%s\" users=\"%s\"\n",
                   topics_loaded.ToString().c_str(), groups_loaded.ToString().c_str(),
                   users_loaded.ToString().c_str());
    }
  });
  // Large requests leave freed buffers in malloc's arenas: return them once
  // the broker is idle again.
  every(absl::Seconds(1), [&m] {
    const int64_t in_flight = m.messaging->inflight().InFlight();
    m.probe->SetRequestBytes(in_flight, m.messaging->inflight().limit());
    if (in_flight == 0) ReturnFreeMemory(8 << 20);
    m.probe->SetPopReads(m.tail != nullptr ? m.tail->hits() : 0, m.pop->store_reads());
    if (m.tail != nullptr) m.probe->SetTailCacheBytes(m.tail->bytes());
  });
  every(absl::Seconds(5), [&m] {
    m.clients->ExpireIdle();
    ClientCounts counts = m.clients->Counts();
    m.probe->SetConnections(counts.producers, counts.consumers);
    m.probe->SetInFlight(m.pop->InFlight());
    for (const auto& [key, lag] : m.progress->LagByGroupTopic()) {
      m.probe->SetConsumerLag(key.first, key.second, lag.messages,
                              absl::ToDoubleSeconds(lag.oldest_unconsumed));
    }
  });
}

void BrokerApp::Stop() {
  // Before Start finished, the modules just go, in reverse order.
  if (!serving_ || stopped_) return;
  stopped_ = true;
  Modules& m = *m_;
  if (m.controller != nullptr) m.controller->Stop();  // a master's slaves take over now
  if (m.roles != nullptr) m.roles->Stop();
  if (m.registrar != nullptr) m.registrar->Stop();  // NameServers drop this broker now
  if (m.push != nullptr) m.push->Shutdown();        // push consumers reconnect elsewhere now
  if (m.server != nullptr) m.server->Shutdown(config_.shutdown_grace);
  if (m.admin_server != nullptr) m.admin_server->Shutdown(config_.shutdown_grace);
  for (auto it = m.tasks.rbegin(); it != m.tasks.rend(); ++it) (*it)->Stop();
  // Runs what is queued (e.g. a push delivery round) while the store client,
  // PopEngine and Arrivals still exist, then joins.
  m.workers.reset();
}

}  // namespace apogee::broker
