#include "sdk/cpp/src/route.h"

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

bool CanRead(nsv1::TopicPermission p) {
  return p == nsv1::TOPIC_PERMISSION_READ || p == nsv1::TOPIC_PERMISSION_READ_WRITE;
}
bool CanWrite(nsv1::TopicPermission p) {
  return p == nsv1::TOPIC_PERMISSION_WRITE || p == nsv1::TOPIC_PERMISSION_READ_WRITE;
}

}  // namespace

RouteCache::RouteCache(Channels* channels, std::vector<std::string> nameservers,
                       absl::Duration request_timeout, absl::Duration refresh, const Clock* clock)
    : channels_(channels),
      nameservers_(std::move(nameservers)),
      request_timeout_(request_timeout),
      refresh_(refresh),
      clock_(clock) {}

absl::StatusOr<std::shared_ptr<const TopicRoute>> RouteCache::Get(const std::string& topic,
                                                                  bool any_master_if_unknown) {
  {
    absl::MutexLock lock(&mu_);
    auto it = routes_.find(topic);
    if (it != routes_.end() && clock_->Now() - it->second->fetched < refresh_) return it->second;
  }
  return Fetch(topic, any_master_if_unknown);
}

void RouteCache::Invalidate(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  routes_.erase(topic);
}

void RouteCache::RefreshAll() {
  std::map<std::string, bool> topics;
  {
    absl::MutexLock lock(&mu_);
    topics = any_master_;
  }
  for (const auto& [topic, any_master] : topics) (void)Fetch(topic, any_master);
}

absl::StatusOr<std::shared_ptr<const TopicRoute>> RouteCache::Fetch(const std::string& topic,
                                                                    bool any_master_if_unknown) {
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
          const nsv1::BrokerInstance* master =
              g.broker_name() == q.broker_name() ? Master(g) : nullptr;
          if (master == nullptr) continue;
          if (CanWrite(q.permission())) {
            for (int32_t id = 0; id < q.write_queues(); ++id) {
              route->writable.push_back({topic, g.broker_name(), master->client_endpoint(), id});
            }
          }
          if (CanRead(q.permission())) {
            for (int32_t id = 0; id < q.read_queues(); ++id) {
              route->readable.push_back({topic, g.broker_name(), master->client_endpoint(), id});
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
    if (!status.ok()) {
      errors.push_back(absl::StrCat(ns, ": ", status.ToString()));
      not_found = not_found || status.code() == absl::StatusCode::kNotFound;
      continue;
    }
    absl::MutexLock lock(&mu_);
    next_nameserver_ = index;  // stick with one that answers
    routes_[topic] = route;
    any_master_[topic] = any_master_if_unknown;
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
