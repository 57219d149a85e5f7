// One gRPC channel per endpoint, shared by every stub of a client.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/v2_status.h"

namespace apogee::sdk {

namespace v2 = ::apache::rocketmq::v2;

// Thread-safe.
class Channels {
 public:
  // `credentials`: every channel's (plaintext or TLS, services/common/tls).
  // `access_key` empty: calls are not signed.
  Channels(std::string client_id, std::shared_ptr<grpc::ChannelCredentials> credentials,
           std::string access_key = "", std::string access_secret = "")
      : client_id_(std::move(client_id)),
        credentials_(std::move(credentials)),
        access_key_(std::move(access_key)),
        access_secret_(std::move(access_secret)) {}

  std::shared_ptr<grpc::Channel> Get(const std::string& endpoint);
  std::unique_ptr<v2::MessagingService::Stub> Messaging(const std::string& endpoint) {
    return v2::MessagingService::NewStub(Get(endpoint));
  }
  // Sets the deadline and the headers brokers read (x-mq-client-id, ...).
  // Also signs the call when the client has credentials.
  void Prepare(grpc::ClientContext* context, absl::Duration timeout) const;
  // Adds x-mq-date-time and, with credentials, the v2 authorization header.
  void Sign(grpc::ClientContext* context) const;

  const std::string& client_id() const { return client_id_; }

 private:
  const std::string client_id_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const std::string access_key_;
  const std::string access_secret_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

template <typename Request, typename Response>
using V2Method = grpc::Status (v2::MessagingService::Stub::*)(grpc::ClientContext*, const Request&,
                                                              Response*);

// A unary v2 call on `endpoint` with `timeout`; the response whatever its
// in-band status, or the gRPC error.
template <typename Request, typename Response>
absl::StatusOr<Response> CallV2Raw(Channels& channels, const std::string& endpoint,
                                   absl::Duration timeout, V2Method<Request, Response> method,
                                   const Request& request) {
  auto stub = channels.Messaging(endpoint);
  grpc::ClientContext context;
  channels.Prepare(&context, timeout);
  Response response;
  absl::Status s = FromGrpcStatus(((*stub).*method)(&context, request, &response));
  if (!s.ok()) return s;
  return response;
}

// CallV2Raw, with the in-band status turned into an error too.
template <typename Request, typename Response>
absl::StatusOr<Response> CallV2(Channels& channels, const std::string& endpoint,
                                absl::Duration timeout, V2Method<Request, Response> method,
                                const Request& request) {
  auto response = CallV2Raw(channels, endpoint, timeout, method, request);
  if (!response.ok()) return response.status();
  if (absl::Status s = FromV2Status(response->status()); !s.ok()) return s;
  return response;
}

// "<host>@<pid>@<random hex>", unique per client instance.
std::string NewClientId();

}  // namespace apogee::sdk
