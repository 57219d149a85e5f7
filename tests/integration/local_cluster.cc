#include "tests/integration/local_cluster.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/common/status/status_macros.h"

namespace apogee::testing {

absl::Status LocalCluster::Start(std::vector<std::string> broker_flags) {
  APOGEE_ASSIGN_OR_RETURN(nameserver_, ServiceProcess::Start("nameserver", binaries_.nameserver,
                                                             {"--metrics_listen="}, dir_.path()));
  APOGEE_ASSIGN_OR_RETURN(
      store_, ServiceProcess::Start("store", binaries_.store,
                                    {absl::StrCat("--data_dir=", dir_.path(), "/store-data"),
                                     absl::StrCat("--listen=unix:", dir_.path(), "/store.sock"),
                                     "--flush=sync", "--metrics_listen="},
                                    dir_.path()));
  return StartBroker(std::move(broker_flags));
}

absl::Status LocalCluster::StartBroker(std::vector<std::string> extra) {
  std::vector<std::string> args = {absl::StrCat("--nameservers=", nameserver_->address()),
                                   absl::StrCat("--store=unix:", dir_.path(), "/store.sock"),
                                   "--metrics_listen=127.0.0.1:0",
                                   "--min_invisible_time=1s",
                                   "--max_delivery_attempts=3",
                                   "--heartbeat_interval=1s"};
  args.insert(args.end(), extra.begin(), extra.end());
  broker_.reset();
  APOGEE_ASSIGN_OR_RETURN(broker_,
                          ServiceProcess::Start("broker", binaries_.broker, args, dir_.path()));
  return absl::OkStatus();
}

absl::Status LocalCluster::RestartBroker() { return broker_->Restart(/*same_port=*/true); }

absl::Status LocalCluster::RestartStore() { return store_->Restart(/*same_port=*/true); }

absl::Status LocalCluster::CreateTopic(const std::string& name, int queues) {
  auto admin = admin::v1::Admin::NewStub(
      grpc::CreateChannel(broker_->address(), grpc::InsecureChannelCredentials()));
  admin::v1::CreateTopicRequest request;
  request.mutable_topic()->set_name(name);
  request.mutable_topic()->set_read_queues(queues);
  request.mutable_topic()->set_write_queues(queues);
  admin::v1::CreateTopicResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Status s = admin->CreateTopic(&context, request, &response);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat("CreateTopic ", name, ": ", s.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace apogee::testing
