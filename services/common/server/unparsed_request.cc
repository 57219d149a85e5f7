#include "services/common/server/unparsed_request.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace apogee {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

class UnparsedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit UnparsedRequestInterceptor(ServerRpcInfo* info) : info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                               UnparsedRequestMessage(info_->method())));
      }
    }
    methods->Proceed();
  }

 private:
  ServerRpcInfo* const info_;
  bool unparsed_ = false;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    // Only these have their request parsed before the handler runs.
    if (info->type() != ServerRpcInfo::Type::UNARY &&
        info->type() != ServerRpcInfo::Type::SERVER_STREAMING) {
      return nullptr;
    }
    return new UnparsedRequestInterceptor(info);
  }
};

}  // namespace

std::string UnparsedRequestMessage(absl::string_view method) {
  return absl::StrCat("request to ", method,
                      " does not parse as the method's request message (malformed protobuf)");
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
UnparsedRequestInterceptorFactory() {
  return std::make_unique<Factory>();
}

}  // namespace apogee
