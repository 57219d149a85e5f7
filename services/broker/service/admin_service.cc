#include "services/broker/service/admin_service.h"

#include "absl/strings/str_cat.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {

grpc::ServerUnaryReactor* AdminService::Run(grpc::CallbackServerContext* context,
                                            std::function<absl::Status()> work) {
  auto* reactor = context->DefaultReactor();
  executor_->Submit([reactor, work = std::move(work)] { reactor->Finish(ToGrpcStatus(work())); });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CreateTopic(grpc::CallbackServerContext* context,
                                                    const av1::CreateTopicRequest* request,
                                                    av1::CreateTopicResponse* response) {
  return Run(context, [this, request, response]() -> absl::Status {
    if (topics_->Get(request->topic().name()).ok()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "topic \"", request->topic().name(), "\" already exists (use UpdateTopic to change it)"));
    }
    APOGEE_RETURN_IF_ERROR(topics_->Upsert(request->topic()));
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_topic(), topics_->Get(request->topic().name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::UpdateTopic(grpc::CallbackServerContext* context,
                                                    const av1::UpdateTopicRequest* request,
                                                    av1::UpdateTopicResponse* response) {
  return Run(context, [this, request, response]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(topics_->Get(request->topic().name()).status());
    APOGEE_RETURN_IF_ERROR(topics_->Upsert(request->topic()));
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_topic(), topics_->Get(request->topic().name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::DeleteTopic(grpc::CallbackServerContext* context,
                                                    const av1::DeleteTopicRequest* request,
                                                    av1::DeleteTopicResponse* response) {
  return Run(context, [this, request]() { return topics_->Delete(request->name()); });
}

grpc::ServerUnaryReactor* AdminService::GetTopic(grpc::CallbackServerContext* context,
                                                 const av1::GetTopicRequest* request,
                                                 av1::GetTopicResponse* response) {
  return Run(context, [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_topic(), topics_->Get(request->name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListTopics(grpc::CallbackServerContext* context,
                                                   const av1::ListTopicsRequest* request,
                                                   av1::ListTopicsResponse* response) {
  return Run(context, [this, response]() {
    for (TopicConfig& topic : topics_->List()) *response->add_topics() = std::move(topic);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::CreateGroup(grpc::CallbackServerContext* context,
                                                    const av1::CreateGroupRequest* request,
                                                    av1::CreateGroupResponse* response) {
  return Run(context, [this, request, response]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(groups_->Put(request->group()));
    *response->mutable_group() = groups_->Get(request->group().name());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::GetGroup(grpc::CallbackServerContext* context,
                                                 const av1::GetGroupRequest* request,
                                                 av1::GetGroupResponse* response) {
  return Run(context, [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_group(), groups_->Find(request->name()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListGroups(grpc::CallbackServerContext* context,
                                                   const av1::ListGroupsRequest* request,
                                                   av1::ListGroupsResponse* response) {
  return Run(context, [this, response]() {
    for (ConsumerGroup& group : groups_->List()) *response->add_groups() = std::move(group);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::DeleteGroup(grpc::CallbackServerContext* context,
                                                    const av1::DeleteGroupRequest* request,
                                                    av1::DeleteGroupResponse* response) {
  return Run(context, [this, request]() { return groups_->Delete(request->name()); });
}

grpc::ServerUnaryReactor* AdminService::ListClients(grpc::CallbackServerContext* context,
                                                    const av1::ListClientsRequest* request,
                                                    av1::ListClientsResponse* response) {
  return Run(context, [this, response]() {
    for (std::string& id : telemetry_->Connected()) response->add_client_ids(std::move(id));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::GetClientStackTrace(
    grpc::CallbackServerContext* context, const av1::GetClientStackTraceRequest* request,
    av1::GetClientStackTraceResponse* response) {
  return Run(context, [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_stack_trace(),
                            telemetry_->RequestStackTrace(request->client_id(), absl::Seconds(5)));
    return absl::OkStatus();
  });
}

}  // namespace apogee::broker
