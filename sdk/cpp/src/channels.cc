#include "sdk/cpp/src/channels.h"

#include <unistd.h>

#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/client_context.h"
#include "services/common/auth/signature.h"
#include "services/common/client/channel.h"

// From the build: CMake's project version (bazel/version.bzl for Bazel).
#ifndef APOGEE_VERSION
#error "APOGEE_VERSION is not defined: the build passes it (CMakeLists.txt, BUILD)"
#endif

namespace apogee::sdk {

std::shared_ptr<grpc::Channel> Channels::Get(const std::string& endpoint) {
  absl::MutexLock lock(&mu_);
  auto& channel = channels_[endpoint];
  if (channel == nullptr) channel = CreateApogeeChannel(endpoint, credentials_);
  return channel;
}

void Channels::Prepare(grpc::ClientContext* context, absl::Duration timeout) const {
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  context->AddMetadata("x-mq-client-id", client_id_);
  context->AddMetadata("x-mq-language", "CPP");
  context->AddMetadata("x-mq-protocol", "v2");
  context->AddMetadata("x-mq-client-version", "apogee-" APOGEE_VERSION);
  Sign(context);
}

void Channels::Sign(grpc::ClientContext* context) const {
  const std::string date_time = auth::FormatDateTime(absl::Now());
  context->AddMetadata(auth::kDateTimeHeader, date_time);
  if (access_key_.empty()) return;
  context->AddMetadata(auth::kAuthorizationHeader,
                       auth::AuthorizationValue(access_key_, access_secret_, date_time));
}

std::string NewClientId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  absl::BitGen gen;
  return absl::StrFormat("%s@%d@%016x", host, static_cast<int>(getpid()),
                         absl::Uniform<uint64_t>(gen));
}

}  // namespace apogee::sdk
