// apogee.admin.v1.Admin on the broker: topics, groups, clients, group
// progress and offset resets, message queries, broker status and config.
// Errors are gRPC statuses naming the input and the rule.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "services/broker/auth/user_registry.h"
#include "services/broker/client/telemetry_hub.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/offset/consumer_progress.h"
#include "services/broker/query/message_query.h"
#include "services/broker/route/registrar.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/broker/transaction/coordinator.h"
#include "services/common/auth/authenticator.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"

namespace apogee::broker {

namespace av1 = ::apogee::admin::v1;

struct AdminServiceDeps {
  TopicManager* topics = nullptr;
  GroupManager* groups = nullptr;
  TelemetryHub* telemetry = nullptr;
  Executor* executor = nullptr;
  StoreClient* store = nullptr;
  PopEngine* pop = nullptr;
  ConsumerProgress* progress = nullptr;
  MessageQuery* query = nullptr;
  const Clock* clock = nullptr;
  std::string version;
  absl::Time start_time;
  UserRegistry* users = nullptr;  // users and ACLs (admin_users.cc)
  // --auth: every call needs a super user. Null: no checks.
  const auth::Authenticator* auth = nullptr;
  TransactionCoordinator* transactions = nullptr;  // null: UNIMPLEMENTED
};

// Thread-safe; store work runs on the executor.
class AdminService final : public av1::Admin::CallbackService {
 public:
  explicit AdminService(AdminServiceDeps deps) : deps_(std::move(deps)) {}

  // Identity and NameServer links for GetBrokerStatus, known once the
  // server is bound (the endpoint) and the Registrar exists.
  void SetRegistration(const BrokerIdentity& identity, const Registrar* registrar);
  // The replication role for GetBrokerStatus and PromoteBroker.
  void SetRoles(ha::RoleManager* roles);

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
  grpc::ServerUnaryReactor* GetTopicStats(grpc::CallbackServerContext* context,
                                          const av1::GetTopicStatsRequest* request,
                                          av1::GetTopicStatsResponse* response) override;
  grpc::ServerUnaryReactor* GetGroupProgress(grpc::CallbackServerContext* context,
                                             const av1::GetGroupProgressRequest* request,
                                             av1::GetGroupProgressResponse* response) override;
  grpc::ServerUnaryReactor* ResetOffset(grpc::CallbackServerContext* context,
                                        const av1::ResetOffsetRequest* request,
                                        av1::ResetOffsetResponse* response) override;
  grpc::ServerUnaryReactor* GetMessage(grpc::CallbackServerContext* context,
                                       const av1::GetMessageRequest* request,
                                       av1::GetMessageResponse* response) override;
  grpc::ServerUnaryReactor* FindMessages(grpc::CallbackServerContext* context,
                                         const av1::FindMessagesRequest* request,
                                         av1::FindMessagesResponse* response) override;
  grpc::ServerUnaryReactor* GetBrokerStatus(grpc::CallbackServerContext* context,
                                            const av1::GetBrokerStatusRequest* request,
                                            av1::GetBrokerStatusResponse* response) override;
  grpc::ServerUnaryReactor* GetBrokerConfig(grpc::CallbackServerContext* context,
                                            const av1::GetBrokerConfigRequest* request,
                                            av1::GetBrokerConfigResponse* response) override;
  grpc::ServerUnaryReactor* PromoteBroker(grpc::CallbackServerContext* context,
                                          const av1::PromoteBrokerRequest* request,
                                          av1::PromoteBrokerResponse* response) override;
  // Users and ACLs: admin_users.cc.
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* context,
                                       const av1::CreateUserRequest* request,
                                       av1::CreateUserResponse* response) override;
  grpc::ServerUnaryReactor* DeleteUser(grpc::CallbackServerContext* context,
                                       const av1::DeleteUserRequest* request,
                                       av1::DeleteUserResponse* response) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* context,
                                      const av1::ListUsersRequest* request,
                                      av1::ListUsersResponse* response) override;
  grpc::ServerUnaryReactor* GrantAcl(grpc::CallbackServerContext* context,
                                     const av1::GrantAclRequest* request,
                                     av1::GrantAclResponse* response) override;
  grpc::ServerUnaryReactor* RevokeAcl(grpc::CallbackServerContext* context,
                                      const av1::RevokeAclRequest* request,
                                      av1::RevokeAclResponse* response) override;
  grpc::ServerUnaryReactor* ListTransactions(grpc::CallbackServerContext* context,
                                             const av1::ListTransactionsRequest* request,
                                             av1::ListTransactionsResponse* response) override;
  grpc::ServerUnaryReactor* ResolveTransaction(grpc::CallbackServerContext* context,
                                               const av1::ResolveTransactionRequest* request,
                                               av1::ResolveTransactionResponse* response) override;
  // Pending delayed messages (admin_timers.cc).
  grpc::ServerUnaryReactor* ListTimers(grpc::CallbackServerContext* context,
                                       const av1::ListTimersRequest* request,
                                       av1::ListTimersResponse* response) override;

 private:
  // Runs `work` on the executor (after the --auth check: a super user) and finishes the call with
  // its status.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                std::function<absl::Status()> work);
  // Runs `work` (returning StatusOr<Response>) on the executor; its value
  // becomes the response.
  template <typename Response, typename Work>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, Response* response,
                                   Work work) {
    return Run(context, [response, work = std::move(work)]() -> absl::Status {
      absl::StatusOr<Response> result = work();
      if (!result.ok()) return result.status();
      *response = *std::move(result);
      return absl::OkStatus();
    });
  }

  const AdminServiceDeps deps_;
  absl::Mutex mu_;
  BrokerIdentity identity_ ABSL_GUARDED_BY(mu_);
  const Registrar* registrar_ ABSL_GUARDED_BY(mu_) = nullptr;
  ha::RoleManager* roles_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace apogee::broker
