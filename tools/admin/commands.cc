#include "tools/admin/commands.h"

#include <unistd.h>

#include <limits>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "apogee/admin/v1/admin.grpc.pb.h"
#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "apogee/producer.h"
#include "grpcpp/client_context.h"
#include "services/common/auth/authenticator.h"
#include "services/common/client/channel.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/status_macros.h"
#include "services/common/tls/tls.h"

namespace apogee::admin_cli {
namespace {

namespace av1 = ::apogee::admin::v1;
namespace nsv1 = ::apogee::nameserver::v1;
using google::protobuf::Value;

constexpr absl::Duration kTimeout = absl::Seconds(10);

// The credential of the command being run (RunCommand sets it; one command
// per process).
auth::Credential& CallCredential() {
  static auto* credential = new auth::Credential();
  return *credential;
}

// --admin_endpoints of the command being run (RunCommand sets it).
std::map<std::string, std::string>& AdminEndpoints() {
  static auto* endpoints = new std::map<std::string, std::string>();
  return *endpoints;
}

// Where `b` serves its admin API: its client endpoint unless it was
// started with --admin_listen (then --admin_endpoints says where).
const std::string& AdminAddress(const BrokerRef& b) {
  auto it = AdminEndpoints().find(b.endpoint);
  return it == AdminEndpoints().end() ? b.endpoint : it->second;
}

// The SDK's TLS options from the global --tls* flags.
TlsOptions SdkTls(const Invocation& inv) {
  TlsOptions out;
  out.enabled = inv.tls.enabled;
  out.ca_file = inv.tls.ca_file;
  out.cert_file = inv.tls.cert_file;
  out.key_file = inv.tls.key_file;
  return out;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + kTimeout));
  auth::SignCall(context.get(), CallCredential(), absl::Now());
  return context;
}

// Turns a failed call into an error naming the call and the peer.
absl::Status CallError(const std::string& what, const grpc::Status& status) {
  absl::Status s = FromGrpcStatus(status);
  return absl::Status(
      s.code(), absl::StrCat(what, ": ", absl::StatusCodeToString(s.code()), ": ", s.message()));
}

std::string Describe(const BrokerRef& b) {
  if (AdminAddress(b) != b.endpoint) {
    return absl::StrCat("broker ", b.name, " (", b.endpoint, ", admin ", AdminAddress(b), ")");
  }
  return absl::StrCat("broker ", b.name, " (", b.endpoint, ")");
}

// One admin call on broker `b`.
template <typename Request, typename Response>
absl::StatusOr<Response> AdminCall(const BrokerRef& b,
                                   grpc::Status (av1::Admin::Stub::*method)(grpc::ClientContext*,
                                                                            const Request&,
                                                                            Response*),
                                   const Request& request, const std::string& rpc) {
  auto stub = av1::Admin::NewStub(CreateApogeeChannel(AdminAddress(b)));
  Response response;
  grpc::Status status = (stub.get()->*method)(Context().get(), request, &response);
  if (!status.ok()) return CallError(absl::StrCat(rpc, " on ", Describe(b)), status);
  return response;
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return TimeText(FromProtoTimestamp(t));
}

Value BrokerValue(const BrokerRef& b) {
  return ObjectValue({{"broker_name", StringValue(b.name)},
                      {"endpoint", StringValue(b.endpoint)},
                      {"cluster", StringValue(b.cluster)}});
}

Value WithBroker(const BrokerRef& b, Value v) {
  (*v.mutable_struct_value()->mutable_fields())["broker"] = BrokerValue(b);
  return v;
}

const std::vector<std::pair<std::string, int>>& TypeChoices() {
  static const auto* choices = new std::vector<std::pair<std::string, int>>{
      {"normal", nsv1::TOPIC_MESSAGE_TYPE_NORMAL},
      {"fifo", nsv1::TOPIC_MESSAGE_TYPE_FIFO},
      {"delay", nsv1::TOPIC_MESSAGE_TYPE_DELAY},
      {"transaction", nsv1::TOPIC_MESSAGE_TYPE_TRANSACTION},
      {"mixed", nsv1::TOPIC_MESSAGE_TYPE_MIXED}};
  return *choices;
}

const std::vector<std::pair<std::string, int>>& PermChoices() {
  static const auto* choices =
      new std::vector<std::pair<std::string, int>>{{"rw", nsv1::TOPIC_PERMISSION_READ_WRITE},
                                                   {"r", nsv1::TOPIC_PERMISSION_READ},
                                                   {"w", nsv1::TOPIC_PERMISSION_WRITE},
                                                   {"none", nsv1::TOPIC_PERMISSION_NONE}};
  return *choices;
}

// The RFC 3339 time of flag `name`, when given, into the field `field()`
// returns (called only then: a proto's mutable_* marks the field present).
template <typename Field>
absl::Status SetTimeIfGiven(const Invocation& inv, const std::string& name, Field field) {
  if (inv.flags.count(name) == 0) return absl::OkStatus();
  APOGEE_ASSIGN_OR_RETURN(absl::Time t, TimeFlag(inv, name));
  *field() = ToProtoTimestamp(t);
  return absl::OkStatus();
}

std::string TypeName(nsv1::TopicMessageType t) {
  std::string name = nsv1::TopicMessageType_Name(t);
  return name.size() > 19 ? absl::AsciiStrToLower(name.substr(19)) : name;  // TOPIC_MESSAGE_TYPE_
}

std::string PermName(nsv1::TopicPermission p) {
  std::string name = nsv1::TopicPermission_Name(p);
  return name.size() > 17 ? absl::AsciiStrToLower(name.substr(17)) : name;  // TOPIC_PERMISSION_
}

}  // namespace

std::vector<BrokerRef> BrokersOf(const nsv1::GetClusterInfoResponse& info, bool masters_only,
                                 const std::string& name) {
  std::vector<BrokerRef> out;
  for (const nsv1::Cluster& cluster : info.clusters()) {
    for (const nsv1::BrokerGroup& group : cluster.broker_groups()) {
      if (!name.empty() && group.broker_name() != name) continue;
      for (const nsv1::BrokerInstance& b : group.brokers()) {
        if (masters_only && b.broker_id() != 0) continue;
        out.push_back({cluster.name(), group.broker_name(), b.broker_id(), b.client_endpoint()});
      }
    }
  }
  return out;
}

std::vector<BrokerRef> MastersOf(const nsv1::GetRouteResponse& route, const std::string& name) {
  std::set<std::string> serving;
  for (const nsv1::QueueData& q : route.queues()) serving.insert(q.broker_name());
  std::vector<BrokerRef> out;
  for (const nsv1::BrokerGroup& group : route.broker_groups()) {
    if (serving.count(group.broker_name()) == 0) continue;
    if (!name.empty() && group.broker_name() != name) continue;
    for (const nsv1::BrokerInstance& b : group.brokers()) {
      if (b.broker_id() == 0) {
        out.push_back({group.cluster_name(), group.broker_name(), 0, b.client_endpoint()});
      }
    }
  }
  return out;
}

Output TopicStatsOutput(
    const std::string& topic,
    const std::vector<std::pair<BrokerRef, av1::GetTopicStatsResponse>>& stats) {
  Output out;
  Table table{{"BROKER", "QUEUE", "MIN_OFFSET", "MAX_OFFSET", "MESSAGES", "LAST_STORE_TIME"}, {}};
  std::vector<Value> brokers;
  int64_t total = 0;
  for (const auto& [broker, s] : stats) {
    for (const av1::QueueStats& q : s.queues()) {
      table.rows.push_back({broker.name, absl::StrCat(q.queue_id()), absl::StrCat(q.min_offset()),
                            absl::StrCat(q.max_offset()),
                            absl::StrCat(q.max_offset() - q.min_offset()),
                            Time(q.last_store_time())});
    }
    total += s.messages();
    brokers.push_back(WithBroker(broker, ToValue(s)));
  }
  out.lines.push_back(absl::StrCat("topic ", topic, ": ", total, " messages"));
  out.tables.push_back(std::move(table));
  Value messages;
  messages.set_number_value(static_cast<double>(total));
  out.json = ObjectValue({{"topic", StringValue(topic)},
                          {"messages", messages},
                          {"brokers", ListValue(std::move(brokers))}});
  return out;
}

Output BrokerStatusOutput(const std::vector<av1::GetBrokerStatusResponse>& statuses) {
  Output out;
  Table table{{"CLUSTER", "BROKER", "ID", "ENDPOINT", "ROLE", "EPOCH", "REPLICATION", "VERSION",
               "STARTED", "TOPICS", "GROUPS", "CLIENTS", "IN_FLIGHT", "NAMESERVERS"},
              {}};
  Table replicas{{"BROKER", "ID", "REPLICA", "ACKED_OFFSET", "LAG_BYTES", "LAG", "IN_SYNC"}, {}};
  std::vector<Value> values;
  for (const av1::GetBrokerStatusResponse& s : statuses) {
    int registered = 0;
    for (const av1::NameServerLink& l : s.nameservers()) registered += l.registered() ? 1 : 0;
    // Master: how sends wait for slaves. Slave: whom it follows and how far
    // behind. Brokers that predate replication show "-".
    std::string replication = "-";
    if (s.role() == "master") {
      replication = s.replication_mode() == "sync"
                        ? absl::StrCat("sync min_insync=", s.min_insync_replicas())
                        : s.replication_mode();
      if (s.replicas_size() > 0) {
        int in_sync = 0;
        for (const av1::ReplicaStatus& r : s.replicas()) in_sync += r.in_sync() ? 1 : 0;
        absl::StrAppend(&replication, " in_sync=", in_sync, "/", s.replicas_size());
      }
    } else if (s.role() == "slave") {
      replication = absl::StrCat("follows ", s.master_address().empty() ? "?" : s.master_address(),
                                 s.master_connected() ? " connected" : " disconnected",
                                 " lag=", s.lag_bytes(), "B/",
                                 absl::FormatDuration(FromProtoDuration(s.lag_time())));
    }
    if (!s.controller().empty() && s.controller() != "static") {
      absl::StrAppend(&replication, " controller=", s.controller());
    }
    table.rows.push_back({s.cluster_name(), s.broker_name(), absl::StrCat(s.broker_id()),
                          s.endpoint(), s.role().empty() ? "-" : s.role(), absl::StrCat(s.epoch()),
                          replication, s.version(), Time(s.start_time()), absl::StrCat(s.topics()),
                          absl::StrCat(s.groups()), absl::StrCat(s.clients()),
                          absl::StrCat(s.in_flight()),
                          absl::StrCat(registered, "/", s.nameservers_size(), " registered")});
    for (const av1::ReplicaStatus& r : s.replicas()) {
      replicas.rows.push_back({s.broker_name(), absl::StrCat(s.broker_id()), r.replica_id(),
                               absl::StrCat(r.acked_offset()), absl::StrCat(r.lag_bytes()),
                               absl::FormatDuration(FromProtoDuration(r.lag_time())),
                               r.in_sync() ? "yes" : "no"});
    }
    values.push_back(ToValue(s));
  }
  out.tables.push_back(std::move(table));
  if (!replicas.rows.empty()) out.tables.push_back(std::move(replicas));
  out.json = ObjectValue({{"brokers", ListValue(std::move(values))}});
  return out;
}

Output GroupProgressOutput(
    const std::string& group,
    const std::vector<std::pair<BrokerRef, av1::GetGroupProgressResponse>>& progress) {
  Output out;
  Table table{{"BROKER", "TOPIC", "QUEUE", "MEMBER", "COMMITTED", "MAX_OFFSET", "LAG", "IN_FLIGHT",
               "LAST_CONSUME_TIME"},
              {}};
  std::vector<Value> brokers;
  int64_t lag = 0;
  for (const auto& [broker, p] : progress) {
    for (const av1::QueueProgress& q : p.queues()) {
      std::string member = q.client_id().empty() ? q.progress_key() : q.client_id();
      table.rows.push_back({broker.name, q.topic(), absl::StrCat(q.queue_id()),
                            member.empty() ? "-" : member, absl::StrCat(q.committed_offset()),
                            absl::StrCat(q.max_offset()), absl::StrCat(q.lag()),
                            absl::StrCat(q.in_flight()), Time(q.last_consume_time())});
    }
    lag += p.lag();
    brokers.push_back(WithBroker(broker, ToValue(p)));
  }
  out.lines.push_back(absl::StrCat("group ", group, ": lag ", lag));
  out.tables.push_back(std::move(table));
  Value total;
  total.set_number_value(static_cast<double>(lag));
  out.json = ObjectValue(
      {{"group", StringValue(group)}, {"lag", total}, {"brokers", ListValue(std::move(brokers))}});
  return out;
}

Output TimersOutput(const std::vector<std::pair<BrokerRef, av1::ListTimersResponse>>& pages) {
  Output out;
  Table table{{"BROKER", "DUE", "TOPIC", "QUEUE", "MESSAGE_ID", "TAG", "KEYS", "OFFSET"}, {}};
  std::vector<Value> brokers;
  for (const auto& [broker, page] : pages) {
    out.lines.push_back(
        absl::StrCat(broker.name, ": ", page.pending(), " pending timer(s)",
                     page.more() ? absl::StrCat("; more after --after=", page.next()) : ""));
    for (const av1::PendingTimer& t : page.timers()) {
      table.rows.push_back({broker.name, Time(t.due()), t.topic(), absl::StrCat(t.queue_id()),
                            t.message_id(), t.tag().empty() ? "-" : t.tag(),
                            t.keys().empty() ? "-" : absl::StrJoin(t.keys(), ","),
                            absl::StrCat(t.offset())});
    }
    brokers.push_back(WithBroker(broker, ToValue(page)));
  }
  out.tables.push_back(std::move(table));
  out.json = ObjectValue({{"brokers", ListValue(std::move(brokers))}});
  return out;
}

Output MessagesOutput(const std::vector<std::pair<BrokerRef, av1::MessageView>>& messages,
                      bool truncated) {
  Output out;
  Table table{{"MESSAGE_ID", "TOPIC", "QUEUE", "OFFSET", "TAG", "KEYS", "STORE_TIME", "BODY"}, {}};
  std::vector<Value> values;
  for (const auto& [broker, m] : messages) {
    std::string body = m.body().substr(0, 60);
    for (char& c : body) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '.';
    }
    table.rows.push_back({m.message_id(), m.topic(), absl::StrCat(m.queue_id()),
                          absl::StrCat(m.queue_offset()), m.tag().empty() ? "-" : m.tag(),
                          m.keys().empty() ? "-" : absl::StrJoin(m.keys(), ","),
                          Time(m.store_time()), body});
    values.push_back(WithBroker(broker, ToValue(m)));
  }
  out.tables.push_back(std::move(table));
  if (truncated) out.lines.push_back("(more messages matched; raise --max to see them)");
  Value t;
  t.set_bool_value(truncated);
  out.json = ObjectValue({{"messages", ListValue(std::move(values))}, {"truncated", t}});
  return out;
}

Output TopicsOutput(const std::vector<std::pair<BrokerRef, nsv1::TopicConfig>>& topics) {
  Output out;
  Table table{{"BROKER", "TOPIC", "READ_QUEUES", "WRITE_QUEUES", "PERM", "TYPE"}, {}};
  std::vector<Value> values;
  for (const auto& [b, t] : topics) {
    table.rows.push_back({b.name, t.name(), absl::StrCat(t.read_queues()),
                          absl::StrCat(t.write_queues()), PermName(t.permission()),
                          TypeName(t.message_type())});
    values.push_back(WithBroker(b, ToValue(t)));
  }
  out.tables.push_back(std::move(table));
  out.json = ObjectValue({{"topics", ListValue(std::move(values))}});
  return out;
}

absl::StatusOr<nsv1::GetClusterInfoResponse> Directory::ClusterInfo() {
  absl::Status last;
  for (const std::string& address : nameservers_) {
    auto stub = nsv1::NameServer::NewStub(CreateApogeeChannel(address));
    nsv1::GetClusterInfoResponse response;
    grpc::Status s = stub->GetClusterInfo(Context().get(), {}, &response);
    if (s.ok()) return response;
    last = CallError(absl::StrCat("GetClusterInfo on NameServer ", address), s);
  }
  return last;
}

absl::StatusOr<nsv1::GetRouteResponse> Directory::Route(const std::string& topic) {
  absl::Status last;
  for (const std::string& address : nameservers_) {
    auto stub = nsv1::NameServer::NewStub(CreateApogeeChannel(address));
    nsv1::GetRouteRequest request;
    request.set_topic(topic);
    nsv1::GetRouteResponse response;
    grpc::Status s = stub->GetRoute(Context().get(), request, &response);
    if (s.ok()) return response;
    last = CallError(absl::StrCat("GetRoute of topic \"", topic, "\" on NameServer ", address), s);
    // NOT_FOUND is an answer, not an unreachable NameServer.
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) break;
  }
  return last;
}

absl::StatusOr<std::vector<BrokerRef>> Directory::TopicMasters(const std::string& topic,
                                                               const std::string& broker) {
  APOGEE_ASSIGN_OR_RETURN(nsv1::GetRouteResponse route, Route(topic));
  std::vector<BrokerRef> masters = MastersOf(route, broker);
  if (masters.empty()) {
    return absl::NotFoundError(absl::StrCat("topic \"", topic, "\" has no master broker",
                                            broker.empty() ? "" : absl::StrCat(" named ", broker),
                                            " in its route"));
  }
  return masters;
}

absl::StatusOr<std::vector<BrokerRef>> Directory::Masters(const std::string& broker) {
  APOGEE_ASSIGN_OR_RETURN(nsv1::GetClusterInfoResponse info, ClusterInfo());
  std::vector<BrokerRef> masters = BrokersOf(info, /*masters_only=*/true, broker);
  if (masters.empty()) {
    return absl::NotFoundError(
        broker.empty() ? std::string("the NameServers know no master broker")
                       : absl::StrCat("the NameServers know no master of broker \"", broker, "\""));
  }
  return masters;
}

namespace {

absl::StatusOr<Output> ClusterList(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(nsv1::GetClusterInfoResponse info, dir.ClusterInfo());
  Output out;
  // ID is the route id (0: the group's writer); CONFIGURED_ID the broker's
  // --broker_id. They differ after a failover.
  Table table{{"CLUSTER", "BROKER", "ID", "CONFIGURED_ID", "EPOCH", "ENDPOINT", "LAST_UPDATE"}, {}};
  for (const nsv1::Cluster& cluster : info.clusters()) {
    for (const nsv1::BrokerGroup& group : cluster.broker_groups()) {
      for (const nsv1::BrokerInstance& b : group.brokers()) {
        table.rows.push_back({cluster.name(), group.broker_name(), absl::StrCat(b.broker_id()),
                              absl::StrCat(b.configured_id()), absl::StrCat(b.epoch()),
                              b.client_endpoint(), Time(b.last_update_time())});
      }
    }
  }
  out.tables.push_back(std::move(table));
  out.json = ToValue(info);
  return out;
}

absl::StatusOr<Output> TopicCreateOrUpdate(Directory& dir, const Invocation& inv, bool create) {
  nsv1::TopicConfig topic;
  topic.set_name(FlagOr(inv, "name", ""));
  if (inv.flags.count("queues") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int64_t queues, IntFlag(inv, "queues", 1, 1024));
    topic.set_read_queues(static_cast<int32_t>(queues));
    topic.set_write_queues(static_cast<int32_t>(queues));
  }
  if (inv.flags.count("type") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int type, ChoiceFlag(inv, "type", TypeChoices()));
    topic.set_message_type(static_cast<nsv1::TopicMessageType>(type));
  }
  if (inv.flags.count("perm") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int perm, ChoiceFlag(inv, "perm", PermChoices()));
    topic.set_permission(static_cast<nsv1::TopicPermission>(perm));
  }
  const std::string broker = FlagOr(inv, "broker", "");
  std::vector<BrokerRef> targets;
  if (create) {
    APOGEE_ASSIGN_OR_RETURN(targets, dir.Masters(broker));
  } else {
    APOGEE_ASSIGN_OR_RETURN(targets, dir.TopicMasters(topic.name(), broker));
  }
  std::vector<std::pair<BrokerRef, nsv1::TopicConfig>> topics;
  for (const BrokerRef& b : targets) {
    nsv1::TopicConfig result;
    if (create) {
      av1::CreateTopicRequest request;
      *request.mutable_topic() = topic;
      APOGEE_ASSIGN_OR_RETURN(auto response,
                              AdminCall(b, &av1::Admin::Stub::CreateTopic, request, "CreateTopic"));
      result = response.topic();
    } else {
      // Unset fields keep the topic's current values.
      av1::GetTopicRequest get;
      get.set_name(topic.name());
      APOGEE_ASSIGN_OR_RETURN(auto current,
                              AdminCall(b, &av1::Admin::Stub::GetTopic, get, "GetTopic"));
      av1::UpdateTopicRequest request;
      *request.mutable_topic() = current.topic();
      if (topic.read_queues() > 0) {
        request.mutable_topic()->set_read_queues(topic.read_queues());
        request.mutable_topic()->set_write_queues(topic.write_queues());
      }
      if (topic.message_type() != 0)
        request.mutable_topic()->set_message_type(topic.message_type());
      if (topic.permission() != 0) request.mutable_topic()->set_permission(topic.permission());
      APOGEE_ASSIGN_OR_RETURN(auto response,
                              AdminCall(b, &av1::Admin::Stub::UpdateTopic, request, "UpdateTopic"));
      result = response.topic();
    }
    topics.emplace_back(b, std::move(result));
  }
  return TopicsOutput(topics);
}

absl::StatusOr<Output> TopicDelete(Directory& dir, const Invocation& inv) {
  const std::string name = FlagOr(inv, "name", "");
  APOGEE_ASSIGN_OR_RETURN(auto targets, dir.TopicMasters(name, FlagOr(inv, "broker", "")));
  Output out;
  std::vector<Value> deleted;
  for (const BrokerRef& b : targets) {
    av1::DeleteTopicRequest request;
    request.set_name(name);
    APOGEE_RETURN_IF_ERROR(
        AdminCall(b, &av1::Admin::Stub::DeleteTopic, request, "DeleteTopic").status());
    out.lines.push_back(absl::StrCat("deleted topic ", name, " from broker ", b.name));
    deleted.push_back(BrokerValue(b));
  }
  out.json =
      ObjectValue({{"topic", StringValue(name)}, {"brokers", ListValue(std::move(deleted))}});
  return out;
}

absl::StatusOr<Output> TopicList(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.Masters(FlagOr(inv, "broker", "")));
  std::vector<std::pair<BrokerRef, nsv1::TopicConfig>> topics;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto response, AdminCall(b, &av1::Admin::Stub::ListTopics,
                                                     av1::ListTopicsRequest(), "ListTopics"));
    for (const nsv1::TopicConfig& t : response.topics()) topics.emplace_back(b, t);
  }
  return TopicsOutput(topics);
}

absl::StatusOr<Output> TopicRoute(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(nsv1::GetRouteResponse route, dir.Route(FlagOr(inv, "name", "")));
  Output out;
  Table queues{{"BROKER", "READ_QUEUES", "WRITE_QUEUES", "PERM", "TYPE"}, {}};
  for (const nsv1::QueueData& q : route.queues()) {
    queues.rows.push_back({q.broker_name(), absl::StrCat(q.read_queues()),
                           absl::StrCat(q.write_queues()), PermName(q.permission()),
                           TypeName(q.message_type())});
  }
  Table brokers{{"CLUSTER", "BROKER", "ID", "ENDPOINT"}, {}};
  for (const nsv1::BrokerGroup& g : route.broker_groups()) {
    for (const nsv1::BrokerInstance& b : g.brokers()) {
      brokers.rows.push_back(
          {g.cluster_name(), g.broker_name(), absl::StrCat(b.broker_id()), b.client_endpoint()});
    }
  }
  out.lines.push_back(absl::StrCat("topic ", route.topic()));
  out.tables.push_back(std::move(queues));
  out.tables.push_back(std::move(brokers));
  out.json = ToValue(route);
  return out;
}

absl::StatusOr<Output> TopicStats(Directory& dir, const Invocation& inv) {
  const std::string name = FlagOr(inv, "name", "");
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.TopicMasters(name, ""));
  std::vector<std::pair<BrokerRef, av1::GetTopicStatsResponse>> stats;
  for (const BrokerRef& b : masters) {
    av1::GetTopicStatsRequest request;
    request.set_name(name);
    APOGEE_ASSIGN_OR_RETURN(
        auto response, AdminCall(b, &av1::Admin::Stub::GetTopicStats, request, "GetTopicStats"));
    stats.emplace_back(b, std::move(response));
  }
  return TopicStatsOutput(name, stats);
}

absl::StatusOr<Output> GroupList(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.Masters(FlagOr(inv, "broker", "")));
  Output out;
  Table table{{"BROKER", "GROUP", "MODE", "FIFO"}, {}};
  std::vector<Value> values;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto response, AdminCall(b, &av1::Admin::Stub::ListGroups,
                                                     av1::ListGroupsRequest(), "ListGroups"));
    for (const av1::ConsumerGroup& g : response.groups()) {
      table.rows.push_back(
          {b.name, g.name(),
           g.consume_mode() == av1::CONSUME_MODE_BROADCASTING ? "broadcasting" : "clustering",
           g.fifo() ? "yes" : "no"});
      values.push_back(WithBroker(b, ToValue(g)));
    }
  }
  out.tables.push_back(std::move(table));
  out.json = ObjectValue({{"groups", ListValue(std::move(values))}});
  return out;
}

absl::StatusOr<Output> GroupCreate(Directory& dir, const Invocation& inv) {
  av1::CreateGroupRequest request;
  request.mutable_group()->set_name(FlagOr(inv, "group", ""));
  const std::string mode = FlagOr(inv, "mode", "clustering");
  if (inv.flags.count("mode") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int value,
                            ChoiceFlag(inv, "mode",
                                       {{"clustering", av1::CONSUME_MODE_CLUSTERING},
                                        {"broadcasting", av1::CONSUME_MODE_BROADCASTING}}));
    request.mutable_group()->set_consume_mode(static_cast<av1::ConsumeMode>(value));
  }
  if (inv.flags.count("fifo") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int fifo, ChoiceFlag(inv, "fifo", {{"true", 1}, {"false", 0}}));
    request.mutable_group()->set_fifo(fifo == 1);
  }
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.Masters(FlagOr(inv, "broker", "")));
  Output out;
  std::vector<Value> values;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto response,
                            AdminCall(b, &av1::Admin::Stub::CreateGroup, request, "CreateGroup"));
    out.lines.push_back(absl::StrCat("group ", response.group().name(), " (", mode,
                                     response.group().fifo() ? ", fifo" : "",
                                     ") configured on broker ", b.name));
    values.push_back(WithBroker(b, ToValue(response.group())));
  }
  out.json = ObjectValue({{"groups", ListValue(std::move(values))}});
  return out;
}

absl::StatusOr<Output> GroupProgress(Directory& dir, const Invocation& inv) {
  const std::string group = FlagOr(inv, "group", "");
  const std::string topic = FlagOr(inv, "topic", "");
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> brokers, dir.MastersFor(topic));
  std::vector<std::pair<BrokerRef, av1::GetGroupProgressResponse>> progress;
  for (const BrokerRef& b : brokers) {
    av1::GetGroupProgressRequest request;
    request.set_group(group);
    request.set_topic(topic);
    APOGEE_ASSIGN_OR_RETURN(auto response, AdminCall(b, &av1::Admin::Stub::GetGroupProgress,
                                                     request, "GetGroupProgress"));
    progress.emplace_back(b, std::move(response));
  }
  return GroupProgressOutput(group, progress);
}

absl::StatusOr<Output> GroupReset(Directory& dir, const Invocation& inv) {
  av1::ResetOffsetRequest request;
  request.set_group(FlagOr(inv, "group", ""));
  request.set_topic(FlagOr(inv, "topic", ""));
  APOGEE_RETURN_IF_ERROR(
      SetTimeIfGiven(inv, "to-time", [&request] { return request.mutable_to_time(); }));
  if (inv.flags.count("to-offset") > 0) {  // Parse() allows exactly one of the two
    APOGEE_ASSIGN_OR_RETURN(int64_t offset,
                            IntFlag(inv, "to-offset", 0, std::numeric_limits<int64_t>::max()));
    request.set_to_offset(offset);
  }
  APOGEE_ASSIGN_OR_RETURN(std::vector<int32_t> queues, QueueListFlag(inv, "queues"));
  for (int32_t q : queues) request.add_queue_ids(q);
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.TopicMasters(request.topic(), ""));
  Output out;
  Table table{{"BROKER", "QUEUE", "MEMBER", "OLD_OFFSET", "NEW_OFFSET"}, {}};
  std::vector<Value> values;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto response,
                            AdminCall(b, &av1::Admin::Stub::ResetOffset, request, "ResetOffset"));
    for (const av1::OffsetChange& c : response.changes()) {
      std::string member = c.client_id().empty() ? c.progress_key() : c.client_id();
      table.rows.push_back({b.name, absl::StrCat(c.queue_id()), member.empty() ? "-" : member,
                            c.old_offset() < 0 ? "-" : absl::StrCat(c.old_offset()),
                            absl::StrCat(c.new_offset())});
    }
    values.push_back(WithBroker(b, ToValue(response)));
  }
  out.tables.push_back(std::move(table));
  out.json = ObjectValue({{"group", StringValue(request.group())},
                          {"topic", StringValue(request.topic())},
                          {"brokers", ListValue(std::move(values))}});
  return out;
}

// Sends through the SDK's Producer (routing, retries, input checks). The
// route is read first because the SDK sends a topic no NameServer knows to
// any master, and brokers auto-create topics: an operator's typo must fail,
// not create a topic. The same route names the receipt's broker in the output.
absl::StatusOr<Output> MessageSend(Directory& dir, const Invocation& inv) {
  const std::string topic = FlagOr(inv, "topic", "");
  APOGEE_ASSIGN_OR_RETURN(nsv1::GetRouteResponse route, dir.Route(topic));
  ProducerOptions options;
  options.endpoints = inv.nameservers;
  options.request_timeout = kTimeout;
  options.send_timeout = kTimeout;
  options.async_threads = 1;                                    // Send only; no SendAsync
  options.client_id = absl::StrCat("apogee-admin@", getpid());  // brokers' client lists
  options.access_key = inv.access_key;
  options.access_secret = inv.access_secret;
  options.tls = SdkTls(inv);
  APOGEE_ASSIGN_OR_RETURN(std::unique_ptr<Producer> producer, Producer::Create(std::move(options)));
  Message message;
  message.topic = topic;
  message.body = FlagOr(inv, "body", "");
  message.tag = FlagOr(inv, "tag", "");
  if (inv.flags.count("key") > 0) message.keys.push_back(FlagOr(inv, "key", ""));
  APOGEE_ASSIGN_OR_RETURN(SendReceipt receipt, producer->Send(message));
  // The route may have changed since: then only the broker name is known.
  std::vector<BrokerRef> masters = MastersOf(route, receipt.broker);
  const BrokerRef target = masters.empty() ? BrokerRef{"", receipt.broker, 0, ""} : masters.front();
  Output out;
  out.lines.push_back(absl::StrCat("message_id ", receipt.message_id));
  out.json = ObjectValue({{"message_id", StringValue(receipt.message_id)},
                          {"topic", StringValue(topic)},
                          {"broker", BrokerValue(target)}});
  return out;
}

absl::StatusOr<Output> MessageGet(Directory& dir, const Invocation& inv) {
  const std::string topic = FlagOr(inv, "topic", "");
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> brokers, dir.MastersFor(topic));
  av1::GetMessageRequest request;
  request.set_message_id(FlagOr(inv, "id", ""));
  request.set_topic(topic);
  std::vector<std::pair<BrokerRef, av1::MessageView>> found;
  absl::Status not_found;
  for (const BrokerRef& b : brokers) {
    auto response = AdminCall(b, &av1::Admin::Stub::GetMessage, request, "GetMessage");
    if (!response.ok()) {
      if (response.status().code() != absl::StatusCode::kNotFound) return response.status();
      not_found = response.status();
      continue;
    }
    for (const av1::MessageView& m : response->messages()) found.emplace_back(b, m);
  }
  if (found.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no message with id \"", request.message_id(), "\"",
                     topic.empty() ? "" : absl::StrCat(" in topic \"", topic, "\""), " on ",
                     brokers.size(), " master broker(s)"));
  }
  return MessagesOutput(found, false);
}

absl::StatusOr<Output> MessageFind(Directory& dir, const Invocation& inv) {
  av1::FindMessagesRequest request;
  if (inv.flags.count("max") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int64_t max, IntFlag(inv, "max", 1, 1000));
    request.set_max_messages(static_cast<int32_t>(max));
  }
  APOGEE_RETURN_IF_ERROR(
      SetTimeIfGiven(inv, "from", [&request] { return request.mutable_from(); }));
  APOGEE_RETURN_IF_ERROR(SetTimeIfGiven(inv, "to", [&request] { return request.mutable_to(); }));
  request.set_topic(FlagOr(inv, "topic", ""));
  request.set_key(FlagOr(inv, "key", ""));
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.TopicMasters(request.topic(), ""));
  std::vector<std::pair<BrokerRef, av1::MessageView>> found;
  bool truncated = false;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto response,
                            AdminCall(b, &av1::Admin::Stub::FindMessages, request, "FindMessages"));
    truncated = truncated || response.truncated();
    for (const av1::MessageView& m : response.messages()) found.emplace_back(b, m);
  }
  return MessagesOutput(found, truncated);
}

absl::StatusOr<Output> TimerList(Directory& dir, const Invocation& inv) {
  av1::ListTimersRequest request;
  request.set_topic(FlagOr(inv, "topic", ""));
  if (inv.flags.count("limit") > 0) {
    APOGEE_ASSIGN_OR_RETURN(int64_t limit, IntFlag(inv, "limit", 1, 10000));
    request.set_limit(static_cast<int32_t>(limit));
  }
  request.set_after(FlagOr(inv, "after", ""));
  const std::string broker = FlagOr(inv, "broker", "");
  APOGEE_ASSIGN_OR_RETURN(
      std::vector<BrokerRef> masters,
      request.topic().empty() ? dir.Masters(broker) : dir.TopicMasters(request.topic(), broker));
  std::vector<std::pair<BrokerRef, av1::ListTimersResponse>> pages;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto page,
                            AdminCall(b, &av1::Admin::Stub::ListTimers, request, "ListTimers"));
    pages.emplace_back(b, std::move(page));
  }
  return TimersOutput(pages);
}

// The brokers of group `name` (every group when empty); NOT_FOUND when none.
absl::StatusOr<std::vector<BrokerRef>> GroupBrokers(Directory& dir, const std::string& name) {
  APOGEE_ASSIGN_OR_RETURN(nsv1::GetClusterInfoResponse info, dir.ClusterInfo());
  std::vector<BrokerRef> brokers = BrokersOf(info, /*masters_only=*/false, name);
  if (brokers.empty()) {
    return absl::NotFoundError(name.empty()
                                   ? std::string("the NameServers know no broker")
                                   : absl::StrCat("the NameServers know no broker \"", name, "\""));
  }
  return brokers;
}

absl::StatusOr<Output> BrokerStatus(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> brokers,
                          GroupBrokers(dir, FlagOr(inv, "broker", "")));
  std::vector<av1::GetBrokerStatusResponse> statuses;
  for (const BrokerRef& b : brokers) {
    APOGEE_ASSIGN_OR_RETURN(auto s, AdminCall(b, &av1::Admin::Stub::GetBrokerStatus,
                                              av1::GetBrokerStatusRequest(), "GetBrokerStatus"));
    statuses.push_back(std::move(s));
  }
  return BrokerStatusOutput(statuses);
}

absl::StatusOr<Output> BrokerPromote(Directory& dir, const Invocation& inv) {
  const std::string name = FlagOr(inv, "broker", "");
  APOGEE_ASSIGN_OR_RETURN(int64_t id, IntFlag(inv, "id", 0, 1 << 20));
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> brokers, GroupBrokers(dir, name));
  av1::PromoteBrokerRequest request;
  request.set_broker_id(id);
  // Any broker of the group can hand the request to the controller; the
  // master (route id 0) first.
  absl::Status last;
  for (const BrokerRef& b : brokers) {
    auto response = AdminCall(b, &av1::Admin::Stub::PromoteBroker, request, "PromoteBroker");
    if (response.ok()) {
      Output out;
      out.lines.push_back(
          absl::StrCat("broker ", name, " id ", id, " is the master at epoch ", response->epoch()));
      Value epoch;
      epoch.set_number_value(static_cast<double>(response->epoch()));
      out.json = ObjectValue({{"broker_name", StringValue(name)}, {"epoch", epoch}});
      return out;
    }
    last = response.status();
    // Every broker of a static group answers the same: no need to ask more.
    if (last.code() == absl::StatusCode::kFailedPrecondition) break;
  }
  return absl::Status(
      last.code(), absl::StrCat("cannot promote broker ", name, " id ", id, ": ", last.message()));
}

absl::StatusOr<Output> BrokerConfig(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(auto masters, dir.Masters(FlagOr(inv, "broker", "")));
  const BrokerRef& b = masters.front();
  APOGEE_ASSIGN_OR_RETURN(
      auto response, AdminCall(b, &av1::Admin::Stub::GetBrokerConfig, av1::GetBrokerConfigRequest(),
                               "GetBrokerConfig"));
  Output out;
  Table table{{"FLAG", "VALUE"}, {}};
  std::map<std::string, std::string> sorted(response.config().begin(), response.config().end());
  for (const auto& [name, value] : sorted) table.rows.push_back({name, value});
  out.tables.push_back(std::move(table));
  out.json = WithBroker(b, ToValue(response));
  return out;
}

// Users and ACLs live in each broker group's store: changes go to every
// master (or --broker), lists come from the first.
template <typename Request, typename Response>
absl::StatusOr<Output> OnMasters(
    Directory& dir, const Invocation& inv,
    grpc::Status (av1::Admin::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request, const std::string& rpc, const std::string& done) {
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> masters, dir.Masters(FlagOr(inv, "broker", "")));
  std::vector<Value> brokers;
  for (const BrokerRef& b : masters) {
    APOGEE_RETURN_IF_ERROR(AdminCall(b, method, request, rpc).status());
    brokers.push_back(BrokerValue(b));
  }
  Output out;
  out.lines.push_back(absl::StrCat(done, " on ", masters.size(), " broker(s)"));
  out.json = ObjectValue({{"brokers", ListValue(std::move(brokers))}});
  return out;
}

absl::StatusOr<Output> UserCreate(Directory& dir, const Invocation& inv) {
  av1::CreateUserRequest request;
  request.mutable_user()->set_username(FlagOr(inv, "username", ""));
  request.mutable_user()->set_secret(FlagOr(inv, "secret", ""));
  request.mutable_user()->set_type(FlagOr(inv, "type", "normal"));
  return OnMasters(dir, inv, &av1::Admin::Stub::CreateUser, request, "CreateUser",
                   absl::StrCat("user ", request.user().username(), " created"));
}

absl::StatusOr<Output> UserDelete(Directory& dir, const Invocation& inv) {
  av1::DeleteUserRequest request;
  request.set_username(FlagOr(inv, "username", ""));
  return OnMasters(dir, inv, &av1::Admin::Stub::DeleteUser, request, "DeleteUser",
                   absl::StrCat("user ", request.username(), " deleted"));
}

absl::StatusOr<Output> AclGrant(Directory& dir, const Invocation& inv) {
  av1::GrantAclRequest request;
  request.set_username(FlagOr(inv, "username", ""));
  av1::AuthPolicy* policy = request.mutable_policy();
  policy->set_resource(FlagOr(inv, "resource", ""));
  for (absl::string_view a : absl::StrSplit(FlagOr(inv, "actions", ""), ',', absl::SkipEmpty())) {
    policy->add_actions(std::string(absl::StripAsciiWhitespace(a)));
  }
  policy->set_decision(FlagOr(inv, "decision", "allow"));
  for (absl::string_view c : absl::StrSplit(FlagOr(inv, "source", ""), ',', absl::SkipEmpty())) {
    policy->add_sources(std::string(absl::StripAsciiWhitespace(c)));
  }
  return OnMasters(dir, inv, &av1::Admin::Stub::GrantAcl, request, "GrantAcl",
                   absl::StrCat(policy->decision(), " ", absl::StrJoin(policy->actions(), ","),
                                " on ", policy->resource(), " granted to ", request.username()));
}

absl::StatusOr<Output> AclRevoke(Directory& dir, const Invocation& inv) {
  av1::RevokeAclRequest request;
  request.set_username(FlagOr(inv, "username", ""));
  request.set_resource(FlagOr(inv, "resource", ""));
  return OnMasters(
      dir, inv, &av1::Admin::Stub::RevokeAcl, request, "RevokeAcl",
      absl::StrCat("policies of ", request.username(), " on ", request.resource(), " revoked"));
}

// `user list` (policies = false) and `acl list`.
absl::StatusOr<Output> UsersList(Directory& dir, const Invocation& inv, bool policies) {
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> masters, dir.Masters(FlagOr(inv, "broker", "")));
  const BrokerRef& b = masters.front();
  APOGEE_ASSIGN_OR_RETURN(
      av1::ListUsersResponse response,
      AdminCall(b, &av1::Admin::Stub::ListUsers, av1::ListUsersRequest(), "ListUsers"));
  const std::string only = FlagOr(inv, "username", "");
  Output out;
  Table table;
  table.header =
      policies ? std::vector<std::string>{"USER", "RESOURCE", "ACTIONS", "DECISION", "SOURCES"}
               : std::vector<std::string>{"USER", "TYPE", "POLICIES"};
  std::vector<Value> users;
  for (const av1::AuthUser& u : response.users()) {
    if (!only.empty() && u.username() != only) continue;
    users.push_back(ToValue(u));
    if (!policies) {
      table.rows.push_back({u.username(), u.type(), std::to_string(u.policies_size())});
      continue;
    }
    for (const av1::AuthPolicy& p : u.policies()) {
      table.rows.push_back({u.username(), p.resource(), absl::StrJoin(p.actions(), ","),
                            p.decision(),
                            p.sources().empty() ? "*" : absl::StrJoin(p.sources(), ",")});
    }
  }
  out.tables.push_back(std::move(table));
  out.json = WithBroker(b, ObjectValue({{"users", ListValue(std::move(users))}}));
  return out;
}

// Pending (or discarded) transactions of every master (or --broker).
absl::StatusOr<Output> TransactionList(Directory& dir, const Invocation& inv) {
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> masters, dir.Masters(FlagOr(inv, "broker", "")));
  av1::ListTransactionsRequest request;
  request.set_topic(FlagOr(inv, "topic", ""));
  int64_t limit = 100;
  if (inv.flags.count("limit") != 0) {
    APOGEE_ASSIGN_OR_RETURN(limit, IntFlag(inv, "limit", 1, 10000));
  }
  request.set_limit(static_cast<int32_t>(limit));
  if (inv.flags.count("discarded") != 0) {
    APOGEE_ASSIGN_OR_RETURN(int discarded,
                            ChoiceFlag(inv, "discarded", {{"false", 0}, {"true", 1}}));
    request.set_discarded(discarded == 1);
  }
  Output out;
  Table table{{"TRANSACTION ID", "MESSAGE ID", "TOPIC", "QUEUE", "SENT", "CHECKS",
               request.discarded() ? "STATE" : "NEXT CHECK"},
              {}};
  std::vector<Value> all;
  for (const BrokerRef& b : masters) {
    APOGEE_ASSIGN_OR_RETURN(auto response, AdminCall(b, &av1::Admin::Stub::ListTransactions,
                                                     request, "ListTransactions"));
    for (const av1::TransactionView& t : response.transactions()) {
      table.rows.push_back({t.transaction_id(), t.message_id(), t.topic(),
                            std::to_string(t.queue_id()), Time(t.sent()),
                            std::to_string(t.checks()),
                            t.discarded() ? "discarded" : Time(t.next_check())});
      all.push_back(WithBroker(b, ToValue(t)));
    }
    if (response.more()) {
      out.lines.push_back(absl::StrCat(b.name, ": more than ", limit, " (raise --limit)"));
    }
  }
  out.tables.push_back(std::move(table));
  out.json = ObjectValue({{"transactions", ListValue(std::move(all))}});
  return out;
}

// An operator's commit or rollback, sent to the master of the broker group
// the id names.
absl::StatusOr<Output> TransactionResolve(Directory& dir, const Invocation& inv, bool commit) {
  const std::string id = FlagOr(inv, "id", "");
  const size_t colon = id.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--id=", id, " is not a transaction id (<broker name>:<hex offset>)"));
  }
  APOGEE_ASSIGN_OR_RETURN(std::vector<BrokerRef> masters, dir.Masters(id.substr(0, colon)));
  av1::ResolveTransactionRequest request;
  request.set_transaction_id(id);
  request.set_commit(commit);
  const BrokerRef& b = masters.front();
  APOGEE_ASSIGN_OR_RETURN(auto response, AdminCall(b, &av1::Admin::Stub::ResolveTransaction,
                                                   request, "ResolveTransaction"));
  Output out;
  out.lines.push_back(absl::StrCat("transaction ", id, commit ? " committed" : " rolled back",
                                   response.already() ? " (already)" : ""));
  out.json = WithBroker(b, ToValue(response));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<BrokerRef>> Directory::MastersFor(const std::string& topic) {
  return topic.empty() ? Masters("") : TopicMasters(topic, "");
}

absl::StatusOr<Output> RunCommand(const Invocation& inv) {
  using Command = absl::StatusOr<Output> (*)(Directory&, const Invocation&);
  static const auto* commands = new std::map<std::string, Command>{
      {"cluster list", ClusterList},
      {"topic create",
       [](Directory& d, const Invocation& i) { return TopicCreateOrUpdate(d, i, true); }},
      {"topic update",
       [](Directory& d, const Invocation& i) { return TopicCreateOrUpdate(d, i, false); }},
      {"topic delete", TopicDelete},
      {"topic list", TopicList},
      {"topic route", TopicRoute},
      {"topic stats", TopicStats},
      {"group list", GroupList},
      {"group create", GroupCreate},
      {"group progress", GroupProgress},
      {"group reset-offset", GroupReset},
      {"message send", MessageSend},
      {"message get", MessageGet},
      {"message find", MessageFind},
      {"timer list", TimerList},
      {"broker status", BrokerStatus},
      {"broker config", BrokerConfig},
      {"broker promote", BrokerPromote},
      {"user create", UserCreate},
      {"user delete", UserDelete},
      {"user list", [](Directory& d, const Invocation& i) { return UsersList(d, i, false); }},
      {"acl grant", AclGrant},
      {"acl revoke", AclRevoke},
      {"acl list", [](Directory& d, const Invocation& i) { return UsersList(d, i, true); }},
      {"transaction list", TransactionList},
      {"transaction commit",
       [](Directory& d, const Invocation& i) { return TransactionResolve(d, i, true); }},
      {"transaction rollback",
       [](Directory& d, const Invocation& i) { return TransactionResolve(d, i, false); }},
  };
  auto it = commands->find(inv.command);
  if (it == commands->end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command \"", inv.command, "\""));
  }
  CallCredential() = {inv.access_key, inv.access_secret};
  AdminEndpoints() = inv.admin_endpoints;
  // Every NameServer and admin channel below uses these credentials.
  tls::ClientTls tls;
  tls.enabled = inv.tls.enabled;
  tls.ca_file = inv.tls.ca_file;
  tls.cert_file = inv.tls.cert_file;
  tls.key_file = inv.tls.key_file;
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                          tls::ChannelCredentials(tls));
  SetDefaultChannelCredentials(std::move(credentials));
  Directory dir(inv.nameservers);
  return it->second(dir, inv);
}

}  // namespace apogee::admin_cli
