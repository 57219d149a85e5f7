// The NameServer's registration handling: a sequence of broker requests
// (plain registrations, registrations on session streams, unregistrations,
// session ends, expiry after time passes) against one Registry, each
// followed by the queries clients make (the v1 route, the v2 QueryRoute and
// assignment answers built from it, cluster info). Input: records of
// [kind byte][u16 length][request proto], as many as fit. A refused request
// must leave the table unchanged; every route the registry gives must
// convert to v2 queues.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "apogee/nameserver/v1/nameserver.pb.h"
#include "fuzz/fuzz_util.h"
#include "services/common/clock/clock.h"
#include "services/common/rocketmq/v2_route.h"
#include "services/nameserver/registry/registry.h"

namespace apogee::nameserver {
namespace {

using fuzz::Answer;
using fuzz::Fail;

void QueryRoute(const Registry& registry, const std::string& topic, bool or_auto_create) {
  auto route = registry.GetRoute(topic, or_auto_create);
  Answer(route.status());
  if (!route.ok()) return;
  Answer(rocketmq::ToV2MessageQueues(*route).status());
  Answer(rocketmq::ToV2QueryRouteQueues(*route).status());
}

void Queries(const Registry& registry, const v1::BrokerRegistration& registration) {
  for (const v1::TopicConfig& topic : registration.topics()) {
    QueryRoute(registry, topic.name(), false);
  }
  QueryRoute(registry, "FuzzAutoCreated", true);
  (void)registry.ListTopics(registration.cluster_name());
  (void)registry.Stats();
}

void Register(Registry& registry, const v1::BrokerRegistration& registration, uint64_t session_id) {
  const std::string before = registry.GetClusterInfo().SerializeAsString();
  auto result = registry.Register(registration, session_id);
  Answer(result.status());
  if (!result.ok() && registry.GetClusterInfo().SerializeAsString() != before) {
    Fail(absl::StrCat("a refused registration changed the table: ", result.status().ToString()));
  }
  Queries(registry, registration);
}

void Run(absl::string_view input) {
  ManualClock clock;
  Registry registry(&clock, absl::Seconds(120));
  while (input.size() >= 3) {
    const auto kind = static_cast<uint8_t>(input[0]);
    const size_t length =
        static_cast<uint8_t>(input[1]) | (static_cast<size_t>(static_cast<uint8_t>(input[2])) << 8);
    input.remove_prefix(3);
    const std::string bytes(input.substr(0, length));
    input.remove_prefix(std::min(length, input.size()));
    switch (kind % 6) {
      case 0: {
        v1::RegisterBrokerRequest request;
        if (request.ParseFromString(bytes)) Register(registry, request.registration(), 0);
        break;
      }
      case 1: {  // on one of two session streams
        v1::BrokerSessionRequest request;
        if (request.ParseFromString(bytes)) {
          Register(registry, request.registration(), 1 + ((kind >> 3) & 1));
        }
        break;
      }
      case 2: {
        v1::UnregisterBrokerRequest request;
        if (request.ParseFromString(bytes)) {
          Answer(registry.Unregister(request.cluster_name(), request.broker_name(),
                                     request.broker_id()));
        }
        break;
      }
      case 3: {
        v1::GetRouteRequest request;
        if (request.ParseFromString(bytes)) QueryRoute(registry, request.topic(), kind & 8);
        break;
      }
      case 4:
        (void)registry.EndSession(1 + ((kind >> 3) & 1));
        break;
      default:
        clock.Advance(absl::Seconds(kind));
        (void)registry.ExpireStale();
        break;
    }
  }
}

}  // namespace
}  // namespace apogee::nameserver

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  apogee::nameserver::Run(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
