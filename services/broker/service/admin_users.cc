// AdminService: users and ACLs (services/broker/auth/user_registry.h).
#include "services/broker/service/admin_service.h"

namespace apogee::broker {

grpc::ServerUnaryReactor* AdminService::CreateUser(grpc::CallbackServerContext* context,
                                                   const av1::CreateUserRequest* request,
                                                   av1::CreateUserResponse* response) {
  return Run(context, [this, request] { return deps_.users->Create(request->user()); });
}

grpc::ServerUnaryReactor* AdminService::DeleteUser(grpc::CallbackServerContext* context,
                                                   const av1::DeleteUserRequest* request,
                                                   av1::DeleteUserResponse* response) {
  return Run(context, [this, request] { return deps_.users->Delete(request->username()); });
}

grpc::ServerUnaryReactor* AdminService::ListUsers(grpc::CallbackServerContext* context,
                                                  const av1::ListUsersRequest* request,
                                                  av1::ListUsersResponse* response) {
  return Run(context, [this, response] {
    for (av1::AuthUser& user : deps_.users->List()) *response->add_users() = std::move(user);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::GrantAcl(grpc::CallbackServerContext* context,
                                                 const av1::GrantAclRequest* request,
                                                 av1::GrantAclResponse* response) {
  return Run(context, [this, request] {
    return deps_.users->Grant(request->username(), request->policy());
  });
}

grpc::ServerUnaryReactor* AdminService::RevokeAcl(grpc::CallbackServerContext* context,
                                                  const av1::RevokeAclRequest* request,
                                                  av1::RevokeAclResponse* response) {
  return Run(context, [this, request] {
    return deps_.users->Revoke(request->username(), request->resource());
  });
}

}  // namespace apogee::broker
