// gRPC adapter for apogee.nameserver.v1.NameServer: decodes calls, asks the
// Registry, records metrics. No routing logic lives here.
#pragma once

#include <atomic>
#include <cstdint>

#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "services/common/auth/authenticator.h"
#include "services/nameserver/metrics/probe.h"
#include "services/nameserver/registry/registry.h"

namespace apogee::nameserver {

// Thread-safe; gRPC calls it from its callback threads. Never blocks: the
// registry is in memory.
class NameServerService final : public v1::NameServer::CallbackService {
 public:
  NameServerService(Registry* registry, Probe* probe) : registry_(registry), probe_(probe) {}

  // --auth: registrations (and unregistrations) need a super user's
  // signature; others are refused with UNAUTHENTICATED / PERMISSION_DENIED.
  // Call before serving.
  void SetAuth(const auth::Authenticator* auth) { auth_ = auth; }

  grpc::ServerUnaryReactor* RegisterBroker(grpc::CallbackServerContext* context,
                                           const v1::RegisterBrokerRequest* request,
                                           v1::RegisterBrokerResponse* response) override;
  grpc::ServerBidiReactor<v1::BrokerSessionRequest, v1::BrokerSessionResponse>* BrokerSession(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* UnregisterBroker(grpc::CallbackServerContext* context,
                                             const v1::UnregisterBrokerRequest* request,
                                             v1::UnregisterBrokerResponse* response) override;
  grpc::ServerUnaryReactor* GetRoute(grpc::CallbackServerContext* context,
                                     const v1::GetRouteRequest* request,
                                     v1::GetRouteResponse* response) override;
  grpc::ServerUnaryReactor* GetClusterInfo(grpc::CallbackServerContext* context,
                                           const v1::GetClusterInfoRequest* request,
                                           v1::GetClusterInfoResponse* response) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const v1::ListTopicsRequest* request,
                                       v1::ListTopicsResponse* response) override;

  // Registers on behalf of a session (0 = no session) and records metrics.
  absl::StatusOr<RegisterResult> Register(const v1::BrokerRegistration& registration,
                                          uint64_t session_id);
  // Drops a closed session's brokers and records metrics.
  void EndSession(uint64_t session_id);

 private:
  // OK, or why the caller may not change registrations (--auth).
  absl::Status Admit(const grpc::ServerContextBase& context) const;
  class SessionReactor;

  Registry* const registry_;
  Probe* const probe_;
  const auth::Authenticator* auth_ = nullptr;
  std::atomic<uint64_t> next_session_id_{1};
};

}  // namespace apogee::nameserver
