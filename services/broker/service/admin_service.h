// apogee.admin.v1.Admin on the broker: topic management (more follows).
// Errors are gRPC statuses naming the input and the rule.
#pragma once

#include "apogee/admin/v1/admin.grpc.pb.h"
#include "services/broker/client/telemetry_hub.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/concurrency/executor.h"

namespace apogee::broker {

namespace av1 = ::apogee::admin::v1;

// Thread-safe; store work runs on the executor.
class AdminService final : public av1::Admin::CallbackService {
 public:
  AdminService(TopicManager* topics, GroupManager* groups, TelemetryHub* telemetry,
               Executor* executor)
      : topics_(topics), groups_(groups), telemetry_(telemetry), executor_(executor) {}

  grpc::ServerUnaryReactor* CreateTopic(grpc::CallbackServerContext* context,
                                        const av1::CreateTopicRequest* request,
                                        av1::CreateTopicResponse* response) override;
  grpc::ServerUnaryReactor* UpdateTopic(grpc::CallbackServerContext* context,
                                        const av1::UpdateTopicRequest* request,
                                        av1::UpdateTopicResponse* response) override;
  grpc::ServerUnaryReactor* DeleteTopic(grpc::CallbackServerContext* context,
                                        const av1::DeleteTopicRequest* request,
                                        av1::DeleteTopicResponse* response) override;
  grpc::ServerUnaryReactor* GetTopic(grpc::CallbackServerContext* context,
                                     const av1::GetTopicRequest* request,
                                     av1::GetTopicResponse* response) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const av1::ListTopicsRequest* request,
                                       av1::ListTopicsResponse* response) override;
  grpc::ServerUnaryReactor* CreateGroup(grpc::CallbackServerContext* context,
                                        const av1::CreateGroupRequest* request,
                                        av1::CreateGroupResponse* response) override;
  grpc::ServerUnaryReactor* GetGroup(grpc::CallbackServerContext* context,
                                     const av1::GetGroupRequest* request,
                                     av1::GetGroupResponse* response) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* context,
                                       const av1::ListGroupsRequest* request,
                                       av1::ListGroupsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteGroup(grpc::CallbackServerContext* context,
                                        const av1::DeleteGroupRequest* request,
                                        av1::DeleteGroupResponse* response) override;
  grpc::ServerUnaryReactor* ListClients(grpc::CallbackServerContext* context,
                                        const av1::ListClientsRequest* request,
                                        av1::ListClientsResponse* response) override;
  grpc::ServerUnaryReactor* GetClientStackTrace(
      grpc::CallbackServerContext* context, const av1::GetClientStackTraceRequest* request,
      av1::GetClientStackTraceResponse* response) override;

 private:
  // Runs `work` on the executor and finishes the call with its status.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                std::function<absl::Status()> work);

  TopicManager* const topics_;
  GroupManager* const groups_;
  TelemetryHub* const telemetry_;
  Executor* const executor_;
};

}  // namespace apogee::broker
