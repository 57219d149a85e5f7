// Finding a broker group's writer (route broker id 0) through the
// NameServers. The static slave's resolver (RoleManager) and the send relay
// (SendForwarder) both ask this, so the lookup rule lives in one place.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "services/broker/route/registrar.h"

namespace apogee::broker::ha {

// Where a group's writer (route broker_id 0) is.
struct WriterLocation {
  std::string ha_endpoint;
  std::string client_endpoint;
  int64_t configured_id = 0;
  int64_t epoch = 0;
};

// The writer of `broker_name` in `cluster` from a GetClusterInfo answer;
// nullopt while the group has no writer other than `self_id` (configured id)
// or the writer registered no HA endpoint.
std::optional<WriterLocation> FindWriter(const nameserver::v1::GetClusterInfoResponse& info,
                                         const std::string& cluster, const std::string& broker_name,
                                         int64_t self_id);

// Thread-safe.
class WriterLookup {
 public:
  WriterLookup(BrokerIdentity self, const std::vector<std::string>& nameservers);

  // Asks each NameServer in turn (each call bounded by `per_call`) and
  // returns the first writer `accept` takes; a NameServer that is down or
  // whose answer is refused (e.g. one that lags this broker's own role)
  // passes the question to the next.
  std::optional<WriterLocation> Find(absl::Duration per_call,
                                     absl::FunctionRef<bool(const WriterLocation&)> accept);

 private:
  const BrokerIdentity self_;
  std::vector<std::unique_ptr<nameserver::v1::NameServer::Stub>> nameservers_;
};

}  // namespace apogee::broker::ha
