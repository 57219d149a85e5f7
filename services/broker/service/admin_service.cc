#include "services/broker/service/admin_service.h"

#include "absl/strings/str_cat.h"
#include "services/common/clock/proto_time.h"
#include "services/common/config/flags.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {

AdminService::AdminService(AdminServiceDeps deps) : deps_(std::move(deps)) {
  // Every method of apogee.admin.v1.Admin, from the server's completion queue.
  ServeUnary("CreateTopic", this, &AdminService::CreateTopic);
  ServeUnary("UpdateTopic", this, &AdminService::UpdateTopic);
  ServeUnary("DeleteTopic", this, &AdminService::DeleteTopic);
  ServeUnary("GetTopic", this, &AdminService::GetTopic);
  ServeUnary("ListTopics", this, &AdminService::ListTopics);
  ServeUnary("CreateGroup", this, &AdminService::CreateGroup);
  ServeUnary("GetGroup", this, &AdminService::GetGroup);
  ServeUnary("ListGroups", this, &AdminService::ListGroups);
  ServeUnary("DeleteGroup", this, &AdminService::DeleteGroup);
  ServeUnary("ListClients", this, &AdminService::ListClients);
  ServeUnary("GetClientStackTrace", this, &AdminService::GetClientStackTrace);
  ServeUnary("GetTopicStats", this, &AdminService::GetTopicStats);
  ServeUnary("GetGroupProgress", this, &AdminService::GetGroupProgress);
  ServeUnary("ResetOffset", this, &AdminService::ResetOffset);
  ServeUnary("GetMessage", this, &AdminService::GetMessage);
  ServeUnary("FindMessages", this, &AdminService::FindMessages);
  ServeUnary("GetBrokerStatus", this, &AdminService::GetBrokerStatus);
  ServeUnary("GetBrokerConfig", this, &AdminService::GetBrokerConfig);
  ServeUnary("PromoteBroker", this, &AdminService::PromoteBroker);
  ServeUnary("CreateUser", this, &AdminService::CreateUser);
  ServeUnary("DeleteUser", this, &AdminService::DeleteUser);
  ServeUnary("ListUsers", this, &AdminService::ListUsers);
  ServeUnary("GrantAcl", this, &AdminService::GrantAcl);
  ServeUnary("RevokeAcl", this, &AdminService::RevokeAcl);
  ServeUnary("ListTransactions", this, &AdminService::ListTransactions);
  ServeUnary("ResolveTransaction", this, &AdminService::ResolveTransaction);
  ServeUnary("ListTimers", this, &AdminService::ListTimers);
}

void AdminService::Run(UnaryCall call, std::function<absl::Status()> work) {
  if (deps_.auth != nullptr) {
    if (absl::Status allowed = deps_.auth->CheckSuper(*call.context, "use the admin API");
        !allowed.ok()) {
      call.finish(ToGrpcStatus(allowed));
      return;
    }
  }
  deps_.executor->Submit(
      [finish = std::move(call.finish), work = std::move(work)] { finish(ToGrpcStatus(work())); });
}

void AdminService::CreateTopic(UnaryCall call, const av1::CreateTopicRequest* request,
                               av1::CreateTopicResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    if (deps_.topics->Get(request->topic().name()).ok()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "topic \"", request->topic().name(), "\" already exists (use UpdateTopic to change it)"));
    }
    APOGEE_RETURN_IF_ERROR(deps_.topics->Upsert(request->topic()));
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_topic(), deps_.topics->Get(request->topic().name()));
    return absl::OkStatus();
  });
}

void AdminService::UpdateTopic(UnaryCall call, const av1::UpdateTopicRequest* request,
                               av1::UpdateTopicResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(deps_.topics->Get(request->topic().name()).status());
    APOGEE_RETURN_IF_ERROR(deps_.topics->Upsert(request->topic()));
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_topic(), deps_.topics->Get(request->topic().name()));
    return absl::OkStatus();
  });
}

void AdminService::DeleteTopic(UnaryCall call, const av1::DeleteTopicRequest* request,
                               av1::DeleteTopicResponse* response) {
  return Run(std::move(call), [this, request]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(deps_.topics->Delete(request->name()));
    deps_.pop->DropTopic(request->name());  // the store dropped the offsets and messages
    return absl::OkStatus();
  });
}

void AdminService::GetTopic(UnaryCall call, const av1::GetTopicRequest* request,
                            av1::GetTopicResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_topic(), deps_.topics->Get(request->name()));
    return absl::OkStatus();
  });
}

void AdminService::ListTopics(UnaryCall call, const av1::ListTopicsRequest* request,
                              av1::ListTopicsResponse* response) {
  return Run(std::move(call), [this, response]() {
    for (TopicConfig& topic : deps_.topics->List()) *response->add_topics() = std::move(topic);
    return absl::OkStatus();
  });
}

void AdminService::CreateGroup(UnaryCall call, const av1::CreateGroupRequest* request,
                               av1::CreateGroupResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(deps_.groups->Put(request->group()));
    *response->mutable_group() = deps_.groups->Get(request->group().name());
    return absl::OkStatus();
  });
}

void AdminService::GetGroup(UnaryCall call, const av1::GetGroupRequest* request,
                            av1::GetGroupResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(*response->mutable_group(), deps_.groups->Find(request->name()));
    return absl::OkStatus();
  });
}

void AdminService::ListGroups(UnaryCall call, const av1::ListGroupsRequest* request,
                              av1::ListGroupsResponse* response) {
  return Run(std::move(call), [this, response]() {
    for (ConsumerGroup& group : deps_.groups->List()) *response->add_groups() = std::move(group);
    return absl::OkStatus();
  });
}

void AdminService::DeleteGroup(UnaryCall call, const av1::DeleteGroupRequest* request,
                               av1::DeleteGroupResponse* response) {
  return Run(std::move(call), [this, request]() { return deps_.groups->Delete(request->name()); });
}

void AdminService::ListClients(UnaryCall call, const av1::ListClientsRequest* request,
                               av1::ListClientsResponse* response) {
  return Run(std::move(call), [this, response]() {
    for (std::string& id : deps_.telemetry->Connected()) response->add_client_ids(std::move(id));
    return absl::OkStatus();
  });
}

void AdminService::GetClientStackTrace(UnaryCall call,
                                       const av1::GetClientStackTraceRequest* request,
                                       av1::GetClientStackTraceResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(
        *response->mutable_stack_trace(),
        deps_.telemetry->RequestStackTrace(request->client_id(), absl::Seconds(5)));
    return absl::OkStatus();
  });
}

void AdminService::SetRegistration(const BrokerIdentity& identity, const Registrar* registrar) {
  absl::MutexLock lock(&mu_);
  identity_ = identity;
  registrar_ = registrar;
}

void AdminService::SetRoles(ha::RoleManager* roles) {
  absl::MutexLock lock(&mu_);
  roles_ = roles;
}

void AdminService::PromoteBroker(UnaryCall call, const av1::PromoteBrokerRequest* request,
                                 av1::PromoteBrokerResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    ha::RoleManager* roles;
    {
      absl::MutexLock lock(&mu_);
      roles = roles_;
    }
    if (roles == nullptr) {
      return absl::FailedPreconditionError(
          "no controller: roles are static (--controller not set)");
    }
    APOGEE_ASSIGN_OR_RETURN(int64_t epoch, roles->Promote(request->broker_id()));
    response->set_epoch(epoch);
    return absl::OkStatus();
  });
}

void AdminService::GetTopicStats(UnaryCall call, const av1::GetTopicStatsRequest* request,
                                 av1::GetTopicStatsResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(TopicConfig topic, deps_.topics->Get(request->name()));
    response->set_name(topic.name());
    const int32_t queues = std::max(topic.read_queues(), topic.write_queues());
    for (int32_t q = 0; q < queues; ++q) {
      APOGEE_ASSIGN_OR_RETURN(auto offsets, deps_.store->GetQueueOffsets(topic.name(), q));
      av1::QueueStats* stats = response->add_queues();
      stats->set_queue_id(q);
      stats->set_min_offset(offsets.min_offset());
      stats->set_max_offset(offsets.max_offset());
      if (offsets.has_max_store_time()) {
        *stats->mutable_last_store_time() = offsets.max_store_time();
      }
      response->set_messages(response->messages() + offsets.max_offset() - offsets.min_offset());
    }
    return absl::OkStatus();
  });
}

void AdminService::GetGroupProgress(UnaryCall call, const av1::GetGroupProgressRequest* request,
                                    av1::GetGroupProgressResponse* response) {
  return Answer(std::move(call), response, [this, request] {
    return deps_.progress->Get(request->group(), request->topic());
  });
}

void AdminService::ResetOffset(UnaryCall call, const av1::ResetOffsetRequest* request,
                               av1::ResetOffsetResponse* response) {
  return Answer(std::move(call), response,
                [this, request] { return deps_.progress->Reset(*request); });
}

void AdminService::GetMessage(UnaryCall call, const av1::GetMessageRequest* request,
                              av1::GetMessageResponse* response) {
  return Answer(std::move(call), response, [this, request] { return deps_.query->Get(*request); });
}

void AdminService::FindMessages(UnaryCall call, const av1::FindMessagesRequest* request,
                                av1::FindMessagesResponse* response) {
  return Answer(std::move(call), response,
                [this, request] { return deps_.query->Find(*request, deps_.clock->Now()); });
}

void AdminService::GetBrokerStatus(UnaryCall call, const av1::GetBrokerStatusRequest* request,
                                   av1::GetBrokerStatusResponse* response) {
  return Run(std::move(call), [this, response]() -> absl::Status {
    {
      absl::MutexLock lock(&mu_);
      response->set_cluster_name(identity_.cluster_name);
      response->set_broker_name(identity_.broker_name);
      response->set_broker_id(identity_.broker_id);
      response->set_endpoint(identity_.client_endpoint);
      if (registrar_ != nullptr) {
        for (const Registrar::Link& link : registrar_->Links()) {
          av1::NameServerLink* out = response->add_nameservers();
          out->set_address(link.address);
          out->set_registered(link.registered);
        }
      }
    }
    ha::RoleManager* roles;
    {
      absl::MutexLock lock(&mu_);
      roles = roles_;
    }
    if (roles != nullptr) roles->FillStatus(response);
    response->set_version(deps_.version);
    *response->mutable_start_time() = ToProtoTimestamp(deps_.start_time);
    response->set_topics(static_cast<int32_t>(deps_.topics->List().size()));
    response->set_groups(static_cast<int32_t>(deps_.groups->List().size()));
    response->set_clients(static_cast<int32_t>(deps_.telemetry->Connected().size()));
    response->set_in_flight(deps_.pop->InFlight());
    APOGEE_ASSIGN_OR_RETURN(store::v1::GetStatsResponse stats, deps_.store->GetStats());
    // Every integer figure of GetStats by field name, so new ones show up.
    const google::protobuf::Reflection* reflection = stats.GetReflection();
    const google::protobuf::Descriptor* descriptor = stats.GetDescriptor();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = descriptor->field(i);
      if (field->is_repeated()) continue;
      int64_t value;
      if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT64) {
        value = reflection->GetInt64(stats, field);
      } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT32) {
        value = reflection->GetInt32(stats, field);
      } else {
        continue;
      }
      (*response->mutable_store())[field->name()] = value;
    }
    return absl::OkStatus();
  });
}

void AdminService::GetBrokerConfig(UnaryCall call, const av1::GetBrokerConfigRequest* request,
                                   av1::GetBrokerConfigResponse* response) {
  return Run(std::move(call), [response]() {
    for (auto& [name, value] : ProgramFlagValues()) (*response->mutable_config())[name] = value;
    return absl::OkStatus();
  });
}

void AdminService::ListTransactions(UnaryCall call, const av1::ListTransactionsRequest* request,
                                    av1::ListTransactionsResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    if (deps_.transactions == nullptr) {
      return absl::UnimplementedError("this broker has no transactions");
    }
    APOGEE_ASSIGN_OR_RETURN(*response, deps_.transactions->List(*request));
    return absl::OkStatus();
  });
}

void AdminService::ResolveTransaction(UnaryCall call, const av1::ResolveTransactionRequest* request,
                                      av1::ResolveTransactionResponse* response) {
  return Run(std::move(call), [this, request, response]() -> absl::Status {
    if (deps_.transactions == nullptr) {
      return absl::UnimplementedError("this broker has no transactions");
    }
    APOGEE_ASSIGN_OR_RETURN(
        bool already, deps_.transactions->Resolve(request->transaction_id(), request->commit()));
    response->set_already(already);
    return absl::OkStatus();
  });
}

}  // namespace apogee::broker
