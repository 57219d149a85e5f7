#include "services/nameserver/service/nameserver_service.h"

#include <cstdio>
#include <string>

#include "services/common/status/grpc_status.h"

namespace apogee::nameserver {
namespace {

const char* RouteResult(const absl::Status& status) {
  if (status.ok()) return "ok";
  return status.code() == absl::StatusCode::kNotFound ? "not_found" : "invalid";
}

}  // namespace

// One broker's registration stream. Reads and writes alternate (read one
// registration, answer it, read the next), so callbacks never overlap.
class NameServerService::SessionReactor final
    : public grpc::ServerBidiReactor<v1::BrokerSessionRequest, v1::BrokerSessionResponse> {
 public:
  SessionReactor(NameServerService* service, uint64_t session_id, const absl::Status& admitted)
      : service_(service), session_id_(session_id) {
    if (!admitted.ok()) {
      service_->probe_->OnRegistration("rejected");
      Finish(ToGrpcStatus(admitted));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the broker closed its side
      Finish(grpc::Status::OK);
      return;
    }
    auto result = service_->Register(request_.registration(), session_id_);
    if (!result.ok()) {
      Finish(ToGrpcStatus(result.status()));
      return;
    }
    response_.set_full_registration_required(result->full_registration_required);
    response_.set_data_version(result->data_version);
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "session write failed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override {
    // Whatever ended the stream (close, cancel, broken connection), the
    // broker is gone from this NameServer's view now, not after expiry.
    service_->EndSession(session_id_);
    delete this;
  }

 private:
  NameServerService* const service_;
  const uint64_t session_id_;
  v1::BrokerSessionRequest request_;
  v1::BrokerSessionResponse response_;
};

absl::Status NameServerService::Admit(const grpc::ServerContextBase& context) const {
  if (auth_ == nullptr) return absl::OkStatus();
  absl::Status admitted = auth_->CheckSuper(context, "register or unregister a broker");
  if (!admitted.ok()) {
    std::fprintf(stderr, "event=registration_refused peer=%s reason=\"%s\"\n",
                 context.peer().c_str(), std::string(admitted.message()).c_str());
  }
  return admitted;
}

absl::StatusOr<RegisterResult> NameServerService::Register(
    const v1::BrokerRegistration& registration, uint64_t session_id) {
  auto result = registry_->Register(registration, session_id);
  if (!result.ok()) {
    probe_->OnRegistration("rejected");
  } else {
    probe_->OnRegistration(result->full_registration_required ? "full_required" : "ok");
    probe_->SetTable(registry_->Stats());
  }
  return result;
}

void NameServerService::EndSession(uint64_t session_id) {
  int removed = registry_->EndSession(session_id);
  probe_->OnRemoval(RemovalReason::kSessionClosed, removed);
  if (removed > 0) probe_->SetTable(registry_->Stats());
}

grpc::ServerUnaryReactor* NameServerService::RegisterBroker(
    grpc::CallbackServerContext* context, const v1::RegisterBrokerRequest* request,
    v1::RegisterBrokerResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (absl::Status admitted = Admit(*context); !admitted.ok()) {
    probe_->OnRegistration("rejected");
    reactor->Finish(ToGrpcStatus(admitted));
    return reactor;
  }
  auto result = Register(request->registration(), 0);
  if (result.ok()) {
    response->set_full_registration_required(result->full_registration_required);
    response->set_data_version(result->data_version);
  }
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

grpc::ServerBidiReactor<v1::BrokerSessionRequest, v1::BrokerSessionResponse>*
NameServerService::BrokerSession(grpc::CallbackServerContext* context) {
  return new SessionReactor(this, next_session_id_++, Admit(*context));
}

grpc::ServerUnaryReactor* NameServerService::UnregisterBroker(
    grpc::CallbackServerContext* context, const v1::UnregisterBrokerRequest* request,
    v1::UnregisterBrokerResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (absl::Status admitted = Admit(*context); !admitted.ok()) {
    reactor->Finish(ToGrpcStatus(admitted));
    return reactor;
  }
  absl::Status status =
      registry_->Unregister(request->cluster_name(), request->broker_name(), request->broker_id());
  if (status.ok()) {
    probe_->OnRemoval(RemovalReason::kUnregistered, 1);
    probe_->SetTable(registry_->Stats());
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* NameServerService::GetRoute(grpc::CallbackServerContext* context,
                                                      const v1::GetRouteRequest* request,
                                                      v1::GetRouteResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto route = registry_->GetRoute(request->topic());
  probe_->OnRouteQuery("v1", RouteResult(route.status()));
  if (route.ok()) *response = std::move(route).value();
  reactor->Finish(ToGrpcStatus(route.status()));
  return reactor;
}

grpc::ServerUnaryReactor* NameServerService::GetClusterInfo(
    grpc::CallbackServerContext* context, const v1::GetClusterInfoRequest* request,
    v1::GetClusterInfoResponse* response) {
  auto* reactor = context->DefaultReactor();
  *response = registry_->GetClusterInfo();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* NameServerService::ListTopics(grpc::CallbackServerContext* context,
                                                        const v1::ListTopicsRequest* request,
                                                        v1::ListTopicsResponse* response) {
  auto* reactor = context->DefaultReactor();
  for (std::string& topic : registry_->ListTopics(request->cluster_name())) {
    response->add_topics(std::move(topic));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace apogee::nameserver
