// AdminService: users and ACLs (services/broker/auth/user_registry.h).
#include "services/broker/service/admin_service.h"

namespace apogee::broker {

void AdminService::CreateUser(UnaryCall call, const av1::CreateUserRequest* request,
                              av1::CreateUserResponse* response) {
  return Run(std::move(call), [this, request] { return deps_.users->Create(request->user()); });
}

void AdminService::DeleteUser(UnaryCall call, const av1::DeleteUserRequest* request,
                              av1::DeleteUserResponse* response) {
  return Run(std::move(call), [this, request] { return deps_.users->Delete(request->username()); });
}

void AdminService::ListUsers(UnaryCall call, const av1::ListUsersRequest* request,
                             av1::ListUsersResponse* response) {
  return Run(std::move(call), [this, response] {
    for (av1::AuthUser& user : deps_.users->List()) *response->add_users() = std::move(user);
    return absl::OkStatus();
  });
}

void AdminService::GrantAcl(UnaryCall call, const av1::GrantAclRequest* request,
                            av1::GrantAclResponse* response) {
  return Run(std::move(call), [this, request] {
    return deps_.users->Grant(request->username(), request->policy());
  });
}

void AdminService::RevokeAcl(UnaryCall call, const av1::RevokeAclRequest* request,
                             av1::RevokeAclResponse* response) {
  return Run(std::move(call), [this, request] {
    return deps_.users->Revoke(request->username(), request->resource());
  });
}

}  // namespace apogee::broker
