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
#include "services/common/server/queue_service.h"

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
class AdminService final : public QueueService<av1::Admin> {
 public:
  explicit AdminService(AdminServiceDeps deps);

  // Identity and NameServer links for GetBrokerStatus, known once the
  // server is bound (the endpoint) and the Registrar exists.
  void SetRegistration(const BrokerIdentity& identity, const Registrar* registrar);
  // The replication role for GetBrokerStatus and PromoteBroker.
  void SetRoles(ha::RoleManager* roles);

  void CreateTopic(UnaryCall call, const av1::CreateTopicRequest* request,
                   av1::CreateTopicResponse* response);
  void UpdateTopic(UnaryCall call, const av1::UpdateTopicRequest* request,
                   av1::UpdateTopicResponse* response);
  void DeleteTopic(UnaryCall call, const av1::DeleteTopicRequest* request,
                   av1::DeleteTopicResponse* response);
  void GetTopic(UnaryCall call, const av1::GetTopicRequest* request,
                av1::GetTopicResponse* response);
  void ListTopics(UnaryCall call, const av1::ListTopicsRequest* request,
                  av1::ListTopicsResponse* response);
  void CreateGroup(UnaryCall call, const av1::CreateGroupRequest* request,
                   av1::CreateGroupResponse* response);
  void GetGroup(UnaryCall call, const av1::GetGroupRequest* request,
                av1::GetGroupResponse* response);
  void ListGroups(UnaryCall call, const av1::ListGroupsRequest* request,
                  av1::ListGroupsResponse* response);
  void DeleteGroup(UnaryCall call, const av1::DeleteGroupRequest* request,
                   av1::DeleteGroupResponse* response);
  void ListClients(UnaryCall call, const av1::ListClientsRequest* request,
                   av1::ListClientsResponse* response);
  void GetClientStackTrace(UnaryCall call, const av1::GetClientStackTraceRequest* request,
                           av1::GetClientStackTraceResponse* response);
  void GetTopicStats(UnaryCall call, const av1::GetTopicStatsRequest* request,
                     av1::GetTopicStatsResponse* response);
  void GetGroupProgress(UnaryCall call, const av1::GetGroupProgressRequest* request,
                        av1::GetGroupProgressResponse* response);
  void ResetOffset(UnaryCall call, const av1::ResetOffsetRequest* request,
                   av1::ResetOffsetResponse* response);
  void GetMessage(UnaryCall call, const av1::GetMessageRequest* request,
                  av1::GetMessageResponse* response);
  void FindMessages(UnaryCall call, const av1::FindMessagesRequest* request,
                    av1::FindMessagesResponse* response);
  void GetBrokerStatus(UnaryCall call, const av1::GetBrokerStatusRequest* request,
                       av1::GetBrokerStatusResponse* response);
  void GetBrokerConfig(UnaryCall call, const av1::GetBrokerConfigRequest* request,
                       av1::GetBrokerConfigResponse* response);
  void PromoteBroker(UnaryCall call, const av1::PromoteBrokerRequest* request,
                     av1::PromoteBrokerResponse* response);
  // Users and ACLs: admin_users.cc.
  void CreateUser(UnaryCall call, const av1::CreateUserRequest* request,
                  av1::CreateUserResponse* response);
  void DeleteUser(UnaryCall call, const av1::DeleteUserRequest* request,
                  av1::DeleteUserResponse* response);
  void ListUsers(UnaryCall call, const av1::ListUsersRequest* request,
                 av1::ListUsersResponse* response);
  void GrantAcl(UnaryCall call, const av1::GrantAclRequest* request,
                av1::GrantAclResponse* response);
  void RevokeAcl(UnaryCall call, const av1::RevokeAclRequest* request,
                 av1::RevokeAclResponse* response);
  void ListTransactions(UnaryCall call, const av1::ListTransactionsRequest* request,
                        av1::ListTransactionsResponse* response);
  void ResolveTransaction(UnaryCall call, const av1::ResolveTransactionRequest* request,
                          av1::ResolveTransactionResponse* response);
  // Pending delayed messages (admin_timers.cc).
  void ListTimers(UnaryCall call, const av1::ListTimersRequest* request,
                  av1::ListTimersResponse* response);

 private:
  // Runs `work` on the executor (after the --auth check: a super user) and finishes the call with
  // its status.
  void Run(UnaryCall call, std::function<absl::Status()> work);
  // Runs `work` (returning StatusOr<Response>) on the executor; its value
  // becomes the response.
  template <typename Response, typename Work>
  void Answer(UnaryCall call, Response* response, Work work) {
    Run(std::move(call), [response, work = std::move(work)]() -> absl::Status {
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
