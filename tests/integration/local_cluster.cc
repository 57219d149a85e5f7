#include "tests/integration/local_cluster.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "services/common/status/status_macros.h"

namespace apogee::testing {

absl::Status LocalCluster::Start(std::vector<std::string> broker_flags) {
  std::vector<std::string> nameserver_args = {MetricsListen()};
  nameserver_args.insert(nameserver_args.end(), nameserver_flags_.begin(), nameserver_flags_.end());
  APOGEE_ASSIGN_OR_RETURN(nameserver_, ServiceProcess::Start("nameserver", binaries_.nameserver,
                                                             nameserver_args, dir_.path()));
  return AddBroker("broker-a", std::move(broker_flags)).status();
}

absl::StatusOr<int> LocalCluster::AddBroker(const std::string& broker_name,
                                            std::vector<std::string> broker_flags) {
  brokers_.push_back(BrokerGroup{broker_name, 0, nullptr, nullptr});
  BrokerGroup& group = brokers_.back();
  APOGEE_RETURN_IF_ERROR(StartStore(&group));
  broker_flags.insert(broker_flags.begin(), absl::StrCat("--broker_name=", broker_name));
  APOGEE_RETURN_IF_ERROR(StartBrokerOf(&group, broker_flags));
  return static_cast<int>(brokers_.size()) - 1;
}

absl::StatusOr<int> LocalCluster::AddSlave(int index, int64_t broker_id,
                                           std::vector<std::string> broker_flags) {
  const std::string name = brokers_[index].name;
  brokers_.push_back(BrokerGroup{name, broker_id, nullptr, nullptr});
  BrokerGroup& group = brokers_.back();
  APOGEE_RETURN_IF_ERROR(StartStore(&group));
  broker_flags.insert(broker_flags.begin(), {absl::StrCat("--broker_name=", name),
                                             absl::StrCat("--broker_id=", broker_id)});
  APOGEE_RETURN_IF_ERROR(StartBrokerOf(&group, broker_flags));
  return static_cast<int>(brokers_.size()) - 1;
}

std::string LocalCluster::StorePrefix(const BrokerGroup& group) const {
  if (group.id != 0) return absl::StrCat(dir_.path(), "/", group.name, "-", group.id, "-store");
  return group.name == "broker-a" ? dir_.path() + "/store"
                                  : dir_.path() + "/" + group.name + "-store";
}

std::string LocalCluster::ProcessName(const BrokerGroup& group) const {
  if (group.id != 0) return absl::StrCat(group.name, "-", group.id);
  return group.name == "broker-a" ? "broker" : group.name;
}

absl::Status LocalCluster::StartStore(BrokerGroup* group) {
  const std::string prefix = StorePrefix(*group);
  std::vector<std::string> args = {absl::StrCat("--data_dir=", prefix, "-data"),
                                   absl::StrCat("--listen=unix:", prefix, ".sock"), "--flush=sync",
                                   MetricsListen()};
  if (replication_) {
    APOGEE_ASSIGN_OR_RETURN(group->ha_port, FreeLocalPort());
    args.push_back(absl::StrCat("--ha_listen=127.0.0.1:", group->ha_port));
  }
  args.insert(args.end(), store_flags_.begin(), store_flags_.end());
  APOGEE_ASSIGN_OR_RETURN(
      group->store, ServiceProcess::Start(
                        ProcessName(*group) == "broker" ? "store" : ProcessName(*group) + "-store",
                        binaries_.store, args, dir_.path()));
  return absl::OkStatus();
}

absl::Status LocalCluster::StartBroker(std::vector<std::string> extra) {
  extra.insert(extra.begin(), absl::StrCat("--broker_name=", brokers_[0].name));
  return StartBrokerOf(&brokers_[0], extra);
}

absl::Status LocalCluster::StartBrokerOf(BrokerGroup* group,
                                         const std::vector<std::string>& extra) {
  const std::string socket = StorePrefix(*group) + ".sock";
  std::vector<std::string> args = {absl::StrCat("--nameservers=", nameserver_->address()),
                                   absl::StrCat("--store=unix:", socket),
                                   "--metrics_listen=127.0.0.1:0",
                                   "--min_invisible_time=1s",
                                   "--max_delivery_attempts=3",
                                   "--heartbeat_interval=1s"};
  if (group->ha_port != 0) {
    args.push_back(absl::StrCat("--store_ha_endpoint=127.0.0.1:", group->ha_port));
  }
  args.insert(args.end(), extra.begin(), extra.end());
  group->broker.reset();
  APOGEE_ASSIGN_OR_RETURN(
      group->broker,
      ServiceProcess::Start(ProcessName(*group), binaries_.broker, args, dir_.path()));
  return absl::OkStatus();
}

absl::Status LocalCluster::RestartBroker(int index) {
  return brokers_[index].broker->Restart(/*same_port=*/true);
}

absl::Status LocalCluster::RestartStore(int index) {
  return brokers_[index].store->Restart(/*same_port=*/true);
}

absl::Status LocalCluster::CreateTopic(const std::string& name, int queues, int index) {
  auto admin = admin::v1::Admin::NewStub(
      grpc::CreateChannel(AdminAddress(index), grpc::InsecureChannelCredentials()));
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

absl::StatusOr<admin::v1::GetBrokerStatusResponse> LocalCluster::BrokerStatus(int index) {
  auto admin = admin::v1::Admin::NewStub(
      grpc::CreateChannel(AdminAddress(index), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  admin::v1::GetBrokerStatusResponse status;
  grpc::Status s = admin->GetBrokerStatus(&context, {}, &status);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("GetBrokerStatus: ", s.error_message()));
  return status;
}

}  // namespace apogee::testing
