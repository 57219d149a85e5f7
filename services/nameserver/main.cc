// apogee-nameserver: the topic-route registry. Brokers register with every
// NameServer; clients ask any of them for routes.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/common/auth/authenticator.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/mutex_checks.h"
#include "services/common/concurrency/periodic_task.h"
#include "services/common/config/flags.h"
#include "services/common/metrics/exposer.h"
#include "services/common/server/connection_flags.h"
#include "services/common/server/grpc_server.h"
#include "services/common/server/reflection.h"
#include "services/common/tls/flags.h"
#include "services/nameserver/metrics/probe.h"
#include "services/nameserver/registry/registry.h"
#include "services/nameserver/service/messaging_service.h"
#include "services/nameserver/service/nameserver_service.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:9876", "gRPC address (host:port) for brokers and clients");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9877",
          "Prometheus /metrics address (host:port); empty disables it");
ABSL_FLAG(absl::Duration, broker_expiry, absl::Seconds(120),
          "Drop a broker not refreshed for this long (a registration may ask for its own)");
ABSL_FLAG(bool, auth, false,
          "Brokers must sign their registrations as a super user (--init_admin's)");
ABSL_FLAG(std::string, init_admin, "",
          "USER:SECRET of the super user brokers register as (needed with --auth)");
ABSL_FLAG(absl::Duration, auth_max_skew, absl::Minutes(15),
          "--auth: how far a signed x-mq-date-time may be from this clock");
ABSL_FLAG(absl::Duration, scan_interval, absl::Seconds(5), "How often to look for expired brokers");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "On SIGTERM, how long in-flight calls may take before they are cancelled");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "apogee-nameserver: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  apogee::ConfigureMutexChecks();
  apogee::BlockTerminationSignals();
  apogee::InitFlags(argc, argv, "apogee-nameserver --listen=0.0.0.0:9876 [--config=FILE] [flags]");
  using namespace apogee;

  const absl::Duration expiry = absl::GetFlag(FLAGS_broker_expiry);
  const absl::Duration scan = absl::GetFlag(FLAGS_scan_interval);
  for (const absl::Status& s :
       {CheckDurationFlag("broker_expiry", expiry, absl::Seconds(1), absl::Hours(1)),
        CheckDurationFlag("scan_interval", scan, absl::Milliseconds(10), absl::Minutes(10))}) {
    if (!s.ok()) return Fail(s);
  }

  auto metrics_registry = std::make_shared<prometheus::Registry>();
  nameserver::Probe probe(metrics_registry);
  nameserver::Registry registry(RealClock::Default(), expiry);
  nameserver::NameServerService nameserver_service(&registry, &probe);
  auth::StaticUsers users;
  const auth::AuthOptions auth_options{absl::GetFlag(FLAGS_auth),
                                       absl::GetFlag(FLAGS_auth_max_skew)};
  if (auth_options.enabled || !absl::GetFlag(FLAGS_init_admin).empty()) {
    auto admin = auth::ParseInitAdmin("init_admin", absl::GetFlag(FLAGS_init_admin));
    if (!admin.ok()) return Fail(admin.status());
    users.Put(*std::move(admin));
  }
  auth::Authenticator authenticator(auth_options, &users, RealClock::Default());
  if (auth_options.enabled) nameserver_service.SetAuth(&authenticator);
  nameserver::MessagingService messaging_service(&registry, &probe, rocketmq::SettingsPolicy{});

  auto metrics = MetricsEndpoint::Start(absl::GetFlag(FLAGS_metrics_listen), metrics_registry);
  if (!metrics.ok()) return Fail(metrics.status());

  GrpcServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  auto credentials = tls::ServerCredentialsFromFlags();
  if (!credentials.ok()) return Fail(credentials.status());
  options.credentials = *credentials;
  auto connections = ConnectionLimitsFromFlags();
  if (!connections.ok()) return Fail(connections.status());
  options.connections = *connections;
  EnableServerReflection();
  auto server = GrpcServer::Start(options, {&nameserver_service, &messaging_service});
  if (!server.ok()) return Fail(server.status());

  PeriodicTask expiry_scan(scan, [&] {
    int removed = registry.ExpireStale();
    if (removed > 0) {
      probe.OnRemoval(nameserver::RemovalReason::kExpired, removed);
      probe.SetTable(registry.Stats());
      std::fprintf(stderr, "event=brokers_expired count=%d\n", removed);
    }
  });

  absl::Status published =
      PublishAddresses((*server)->bound_address(), (*metrics)->bound_address());
  if (!published.ok()) return Fail(published);
  std::fprintf(stderr, "event=started listen=%s tls=%s metrics=%s broker_expiry=%s\n",
               (*server)->bound_address().c_str(),
               absl::GetFlag(FLAGS_tls_cert).empty() ? "off" : "on",
               (*metrics)->bound_address().c_str(), absl::FormatDuration(expiry).c_str());

  int signal_number = WaitForTerminationSignal();
  std::fprintf(stderr, "event=stopping signal=%d\n", signal_number);
  expiry_scan.Stop();
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  std::fprintf(stderr, "event=stopped\n");
  return 0;
}
