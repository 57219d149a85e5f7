#include "sdk/cpp/src/route.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "services/common/status/grpc_status.h"

namespace apogee::sdk {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;

const nsv1::BrokerInstance* Master(const nsv1::BrokerGroup& group) {
  for (const nsv1::BrokerInstance& b : group.brokers()) {
    if (b.broker_id() == 0) return &b;
  }
  return nullptr;
}

// Reads go to the writer while it lives, else to a slave (its store
// follows the writer's; the NameServer lists brokers by route id).
const nsv1::BrokerInstance* Reader(const nsv1::BrokerGroup& group) {
  if (const nsv1::BrokerInstance* master = Master(group); master != nullptr) return master;
  return group.brokers().empty() ? nullptr : &group.brokers(0);
}

bool CanRead(nsv1::TopicPermission p) {
  return p == nsv1::TOPIC_PERMISSION_READ || p == nsv1::TOPIC_PERMISSION_READ_WRITE;
}
bool CanWrite(nsv1::TopicPermission p) {
  return p == nsv1::TOPIC_PERMISSION_WRITE || p == nsv1::TOPIC_PERMISSION_READ_WRITE;
}

bool Empty(const TopicRoute& route) { return route.writable.empty() && route.readable.empty(); }
// No queue to write to: no group has a writer (e.g. a master died and no
// slave was promoted yet), or nothing registered at all.
bool Writerless(const TopicRoute& route) { return route.writable.empty(); }

}  // namespace

std::string BrokerEndpoint(const TopicRoute& route, const std::string& broker, int64_t broker_id) {
  auto group = route.brokers.find(broker);
  if (group == route.brokers.end()) return "";
  auto it = group->second.find(broker_id);
  return it == group->second.end() ? "" : it->second;
}

RouteCache::RouteCache(Channels* channels, std::vector<std::string> nameservers,
                       absl::Duration request_timeout, absl::Duration refresh, const Clock* clock)
    : channels_(channels),
      nameservers_(std::move(nameservers)),
      request_timeout_(request_timeout),
      refresh_(refresh),
      clock_(clock) {}

absl::Duration RouteCache::RefreshTick(absl::Duration refresh) {
  return std::clamp(refresh / 5, absl::Milliseconds(100), absl::Seconds(1));
}

absl::StatusOr<std::shared_ptr<const TopicRoute>> RouteCache::Get(const std::string& topic,
                                                                  bool any_master_if_unknown) {
  {
    absl::MutexLock lock(&mu_);
    auto it = routes_.find(topic);
    if (it != routes_.end()) {
      // Stale or not: refreshing is the refresher's job, so a NameServer
      // outage never fails a send or receive that has a route.
      it->second.any_master_if_unknown |= any_master_if_unknown;
      return it->second.route;
    }
  }
  auto fetched = Fetch(topic, any_master_if_unknown, /*keep_empty=*/true);
  if (!fetched.ok()) return fetched.status();
  absl::MutexLock lock(&mu_);
  Entry entry{*fetched, any_master_if_unknown, false, Backoff(RefreshTick(refresh_), refresh_),
              absl::InfinitePast()};
  // A concurrent first Get may have stored one already; both are fresh.
  return routes_.try_emplace(topic, std::move(entry)).first->second.route;
}

void RouteCache::Invalidate(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  auto it = routes_.find(topic);
  if (it != routes_.end()) it->second.invalidated = true;
}

void RouteCache::RefreshAll() {
  std::vector<std::string> due;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    for (const auto& [topic, e] : routes_) {
      const bool wanted =
          e.invalidated || Writerless(*e.route) || now - e.route->fetched >= refresh_;
      if (wanted && now >= e.retry_at) due.push_back(topic);
    }
  }
  for (const std::string& topic : due) Refresh(topic);
}

void RouteCache::Refresh(const std::string& topic) {
  bool any_master_if_unknown;
  bool have_queues;
  {
    absl::MutexLock lock(&mu_);
    auto it = routes_.find(topic);
    if (it == routes_.end()) return;
    any_master_if_unknown = it->second.any_master_if_unknown;
    have_queues = !Empty(*it->second.route);
  }
  // A NameServer that has just started knows no brokers yet: its empty
  // answer must not replace a route that has queues.
  auto fetched = Fetch(topic, any_master_if_unknown, /*keep_empty=*/!have_queues);
  absl::MutexLock lock(&mu_);
  Entry& e = routes_.at(topic);  // entries are never removed
  if (fetched.ok() && Writerless(**fetched)) {
    // Still no writer (maybe slaves to read from): asked again with backoff
    // (such a route is always due), not every tick.
    e.route = *std::move(fetched);
    e.invalidated = false;
    e.retry_at = clock_->Now() + e.backoff.Failure();
    return;
  }
  if (fetched.ok()) {
    if (e.backoff.failures() > 0 && have_queues) {
      std::fprintf(stderr, "apogee-sdk event=route_refreshed topic=%s after_failures=%d\n",
                   topic.c_str(), e.backoff.failures());
    }
    e.route = *std::move(fetched);
    e.invalidated = false;
    e.backoff.Success();
    e.retry_at = absl::InfinitePast();
    return;
  }
  const absl::Duration wait = e.backoff.Failure();
  const absl::Time now = clock_->Now();
  e.retry_at = now + wait;
  // One line per failed try, so at most one per backoff period.
  std::fprintf(stderr,
               "apogee-sdk event=route_refresh_failed topic=%s failures=%d "
               "keeping_route_of_age=%s retry_in=%s error=\"%s\"\n",
               topic.c_str(), e.backoff.failures(),
               absl::FormatDuration(now - e.route->fetched).c_str(),
               absl::FormatDuration(wait).c_str(), fetched.status().ToString().c_str());
}

absl::StatusOr<std::shared_ptr<const TopicRoute>> RouteCache::Fetch(const std::string& topic,
                                                                    bool any_master_if_unknown,
                                                                    bool keep_empty) {
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = next_nameserver_;
  }
  std::vector<std::string> errors;
  bool not_found = false;
  for (size_t i = 0; i < nameservers_.size(); ++i) {
    const size_t index = (first + i) % nameservers_.size();
    const std::string& ns = nameservers_[index];
    auto stub = nsv1::NameServer::NewStub(channels_->Get(ns));
    grpc::ClientContext context;
    channels_->Prepare(&context, request_timeout_);
    nsv1::GetRouteRequest request;
    request.set_topic(topic);
    nsv1::GetRouteResponse response;
    absl::Status status = FromGrpcStatus(stub->GetRoute(&context, request, &response));
    auto route = std::make_shared<TopicRoute>();
    route->fetched = clock_->Now();
    if (status.ok()) {
      for (const nsv1::QueueData& q : response.queues()) {
        for (const nsv1::BrokerGroup& g : response.broker_groups()) {
          if (g.broker_name() != q.broker_name()) continue;
          for (const nsv1::BrokerInstance& b : g.brokers()) {
            route->brokers[g.broker_name()][b.broker_id()] = b.client_endpoint();
          }
          const nsv1::BrokerInstance* master = Master(g);
          const nsv1::BrokerInstance* reader = Reader(g);
          if (master != nullptr && CanWrite(q.permission())) {
            for (int32_t id = 0; id < q.write_queues(); ++id) {
              route->writable.push_back({topic, g.broker_name(), master->client_endpoint(), id});
            }
          }
          if (reader != nullptr && CanRead(q.permission())) {
            for (int32_t id = 0; id < q.read_queues(); ++id) {
              route->readable.push_back({topic, g.broker_name(), reader->client_endpoint(), id});
            }
          }
        }
      }
    } else if (status.code() == absl::StatusCode::kNotFound && any_master_if_unknown) {
      grpc::ClientContext cluster_context;
      channels_->Prepare(&cluster_context, request_timeout_);
      nsv1::GetClusterInfoResponse clusters;
      status = FromGrpcStatus(
          stub->GetClusterInfo(&cluster_context, nsv1::GetClusterInfoRequest(), &clusters));
      if (status.ok()) {
        for (const nsv1::Cluster& c : clusters.clusters()) {
          for (const nsv1::BrokerGroup& g : c.broker_groups()) {
            if (const nsv1::BrokerInstance* master = Master(g); master != nullptr) {
              route->writable.push_back({topic, g.broker_name(), master->client_endpoint(), 0});
            }
          }
        }
      }
    }
    if (status.ok() && !keep_empty && Empty(*route)) {
      status = absl::NotFoundError("answered no queues (no broker registered yet?)");
    }
    if (!status.ok()) {
      errors.push_back(absl::StrCat(ns, ": ", status.ToString()));
      not_found = not_found || status.code() == absl::StatusCode::kNotFound;
      continue;
    }
    absl::MutexLock lock(&mu_);
    next_nameserver_ = index;  // stick with one that answers
    return std::shared_ptr<const TopicRoute>(route);
  }
  if (not_found) {
    return absl::NotFoundError(
        absl::StrCat("topic \"", topic, "\" has no route (", absl::StrJoin(errors, "; "), ")"));
  }
  return absl::UnavailableError(absl::StrCat("no NameServer answered for topic \"", topic,
                                             "\": ", absl::StrJoin(errors, "; ")));
}

}  // namespace apogee::sdk
