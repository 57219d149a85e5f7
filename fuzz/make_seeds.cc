// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from
// real messages built with the project's own types: requests as official
// clients send them, records as the store encodes them, command lines from
// the admin README. Run by scripts/fuzz-seeds.sh; the output is committed.
// usage: make_seeds OUT_DIR
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "apache/rocketmq/v2/service.pb.h"
#include "apogee/admin/v1/admin.pb.h"
#include "apogee/broker/v1/push.pb.h"
#include "apogee/nameserver/v1/nameserver.pb.h"
#include "services/broker/consume/receipt_handle.h"
#include "services/broker/message/codec.h"
#include "services/store/commitlog/record.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;
namespace av1 = ::apogee::admin::v1;
namespace nsv1 = ::apogee::nameserver::v1;
namespace pushv1 = ::apogee::broker::v1;

std::string g_out;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = absl::StrCat(g_out, "/", target);
  std::filesystem::create_directories(dir);
  FILE* f = std::fopen(absl::StrCat(dir, "/", name).c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::fprintf(stderr, "make_seeds: cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

// A selector prefix (the bytes a target reads before the proto) + proto.
std::string With(std::string prefix, const google::protobuf::Message& m) {
  return prefix + m.SerializeAsString();
}

v2::Message Message(const std::string& topic, const std::string& tag, const std::string& body,
                    int n, bool fifo) {
  v2::Message m;
  m.mutable_topic()->set_name(topic);
  auto* p = m.mutable_system_properties();
  p->set_tag(tag);
  p->add_keys(absl::StrCat("order-", n));
  p->set_message_id(absl::StrFormat("01C0A80001%022d", n));
  p->set_body_encoding(v2::IDENTITY);
  p->set_message_type(fifo ? v2::FIFO : v2::NORMAL);
  if (fifo) p->set_message_group("customer-7");
  p->mutable_born_timestamp()->set_seconds(1'800'000'000);
  p->set_born_host("10.0.0.7");
  (*m.mutable_user_properties())["region"] = "eu";
  m.set_body(body);
  return m;
}

std::string Handle(int offset) {
  broker::ReceiptHandle h;
  h.topic = "Orders";
  h.queue_id = 1;
  h.offset = offset;
  h.delivery_id = 42;
  return h.Encode();
}

void V2Requests() {
  const std::string t = "v2_requests";
  v2::SendMessageRequest send;
  *send.add_messages() = Message("Orders", "TagA", "hello", 1, false);
  *send.add_messages() = Message("Orders", "TagB", std::string(64, 'x'), 2, false);
  Write(t, "send_normal", With(std::string("\x02\x11", 2), send));
  v2::SendMessageRequest fifo;
  *fifo.add_messages() = Message("Fifo", "TagA", "in order", 3, true);
  Write(t, "send_fifo", With(std::string("\x02\x32", 2), fifo));
  v2::QueryRouteRequest route;
  route.mutable_topic()->set_name("Orders");
  route.mutable_topic()->set_resource_namespace("ns1");
  Write(t, "query_route", With(std::string("\x00\x00", 2), route));
  v2::HeartbeatRequest heartbeat;
  heartbeat.mutable_group()->set_name("PushGroup");
  heartbeat.set_client_type(v2::SIMPLE_CONSUMER);
  Write(t, "heartbeat", With(std::string("\x01\x00", 2), heartbeat));
  v2::ReceiveMessageRequest receive;
  receive.mutable_group()->set_name("PushGroup");
  receive.mutable_message_queue()->mutable_topic()->set_name("Orders");
  receive.mutable_filter_expression()->set_type(v2::TAG);
  receive.mutable_filter_expression()->set_expression("TagA||TagB");
  receive.set_batch_size(16);
  receive.mutable_invisible_duration()->set_seconds(30);
  receive.mutable_long_polling_timeout()->set_seconds(20);
  Write(t, "receive", With(std::string("\x04\x00", 2), receive));
  // The SQL92 parser and evaluator (MessageFilter) on the same path.
  receive.mutable_filter_expression()->set_type(v2::SQL);
  receive.mutable_filter_expression()->set_expression(
      "(a > 3 AND a BETWEEN 1 AND 10) OR (b IN ('x', 'y') AND NOT c IS NULL) OR TAGS = 'TagA'");
  Write(t, "receive_sql92", With(std::string("\x04\x00", 2), receive));
  v2::AckMessageRequest ack;
  ack.mutable_group()->set_name("PushGroup");
  ack.mutable_topic()->set_name("Orders");
  auto* entry = ack.add_entries();
  entry->set_message_id("01C0A800010000000000000000000000000001");
  entry->set_receipt_handle(Handle(5));
  Write(t, "ack", With(std::string("\x05\x00", 2), ack));
  v2::PullMessageRequest pull;
  pull.mutable_group()->set_name("PullGroup");
  pull.mutable_message_queue()->mutable_topic()->set_name("Orders");
  pull.set_offset(10);
  pull.set_batch_size(32);
  pull.mutable_filter_expression()->set_expression("*");
  Write(t, "pull", With(std::string("\x07\x00", 2), pull));
  v2::QueryOffsetRequest query;
  query.mutable_message_queue()->mutable_topic()->set_name("Orders");
  query.set_query_offset_policy(v2::TIMESTAMP);
  query.mutable_timestamp()->set_seconds(1'800'000'000);
  Write(t, "query_offset", With(std::string("\x0a\x00", 2), query));
  v2::TelemetryCommand settings;
  auto* s = settings.mutable_settings();
  s->set_client_type(v2::PRODUCER);
  s->mutable_publishing()->add_topics()->set_name("Orders");
  s->mutable_request_timeout()->set_seconds(3);
  Write(t, "telemetry_producer", With(std::string("\x0c\x00", 2), settings));
  v2::ChangeInvisibleDurationRequest change;
  change.mutable_group()->set_name("PushGroup");
  change.set_receipt_handle(Handle(6));
  change.mutable_invisible_duration()->set_seconds(60);
  Write(t, "change_invisible", With(std::string("\x0e\x00", 2), change));
}

store::v1::StoredRecord Stored(const v2::Message& message, int64_t offset) {
  store::v1::AppendRecord record =
      broker::ToStoreRecord(message, "Orders", 1, "127.0.0.1:8081", "10.0.0.7:5000");
  store::v1::StoredRecord stored;
  stored.set_topic(record.topic());
  stored.set_queue_id(record.queue_id());
  stored.set_queue_offset(offset);
  stored.set_commit_log_offset(offset * 300);
  stored.set_message_id(record.message_id());
  *stored.mutable_keys() = record.keys();
  stored.set_tag(record.tag());
  *stored.mutable_born_time() = record.born_time();
  stored.mutable_store_time()->set_seconds(1'800'000'001);
  stored.set_flags(record.flags());
  stored.set_body(record.body());
  return stored;
}

void PushAdmin() {
  const std::string t = "push_admin";
  pushv1::ConsumeRequest subscribe;
  auto* sub = subscribe.mutable_subscribe();
  sub->set_client_id("client-1");
  sub->set_group("PushGroup");
  sub->set_topic("Orders");
  sub->set_tag_expression("TagA||TagB");
  sub->set_initial_credits(64);
  sub->mutable_ack_timeout()->set_seconds(30);
  Write(t, "subscribe", With(std::string("\x00", 1), subscribe));
  pushv1::ConsumeRequest settle;
  settle.mutable_settle()->add_acks(Handle(5));
  settle.mutable_settle()->add_nacks()->set_receipt_handle(Handle(6));
  Write(t, "settle", With(std::string("\x00", 1), settle));
  Write(t, "stored_record",
        With(std::string("\x01", 1), Stored(Message("Orders", "TagA", "hello", 1, false), 3)));
  av1::CreateTopicRequest create;
  create.mutable_topic()->set_name("Orders");
  create.mutable_topic()->set_read_queues(8);
  create.mutable_topic()->set_write_queues(8);
  create.mutable_topic()->set_permission(nsv1::TOPIC_PERMISSION_READ_WRITE);
  create.mutable_topic()->set_message_type(nsv1::TOPIC_MESSAGE_TYPE_NORMAL);
  Write(t, "create_topic", With(std::string("\x02", 1), create));
  av1::CreateGroupRequest group;
  group.mutable_group()->set_name("PushGroup");
  group.mutable_group()->set_consume_mode(av1::CONSUME_MODE_BROADCASTING);
  Write(t, "create_group", With(std::string("\x05", 1), group));
  av1::ResetOffsetRequest reset;
  reset.set_group("PushGroup");
  reset.set_topic("Orders");
  reset.add_queue_ids(0);
  reset.mutable_to_time()->set_seconds(1'800'000'000);
  Write(t, "reset_offset", With(std::string("\x08", 1), reset));
  av1::GetMessageRequest get;
  get.set_message_id("01C0A800010000000000000000000000000001");
  get.set_topic("Orders");
  Write(t, "get_message", With(std::string("\x09", 1), get));
  av1::FindMessagesRequest find;
  find.set_topic("Orders");
  find.set_key("order-1");
  find.set_max_messages(10);
  Write(t, "find_messages", With(std::string("\x0a", 1), find));
}

std::string Records(int64_t start, int count) {
  std::string bytes;
  for (int i = 0; i < count; ++i) {
    store::RecordInput input;
    input.topic = i % 2 == 0 ? "Orders" : "%RETRY%PushGroup";
    input.queue_id = i % 3;
    input.message_id = absl::StrCat("id-", i);
    input.keys = {absl::StrCat("order-", i)};
    input.tag = "TagA";
    input.tags_hash = 7;
    input.born_timestamp_ms = 1'800'000'000'000;
    input.body = std::string(static_cast<size_t>(20 + i * 7), static_cast<char>('a' + i));
    store::RecordPosition position;
    position.commit_offset = start + static_cast<int64_t>(bytes.size());
    position.queue_offset = i / 3;
    position.store_timestamp_ms = 1'800'000'000'100 + i;
    position.batch_continues = i == 1;  // records 1 and 2 form one batch
    store::EncodeRecord(input, position, &bytes);
  }
  return bytes;
}

void Store() {
  const std::string one = Records(0, 1);
  Write("store_record", "record_at_0", "\x00" + one);
  Write("store_record", "record_at_1234", "\x01" + Records(1234, 1));
  const std::string log = Records(0, 4);
  Write("store_recovery", "one_segment", std::string("\x00\x00", 2) + log);
  Write("store_recovery", "two_segments", std::string("\x01\x80", 2) + log);
  Write("store_recovery", "torn_tail", std::string("\x00\x00", 2) + log.substr(0, log.size() - 9));
  std::string flipped = log;
  flipped[one.size() + 80] ^= 0x10;  // a body byte of the second record
  Write("store_recovery", "corrupt_second", std::string("\x00\x00", 2) + flipped);
  // Finding 2 (docs/fuzzing.md): two segments split inside the last record,
  // so the second is corrupt from its first byte; with the index kept (0x01)
  // and rebuilt (0x1d).
  const size_t last_start = Records(0, 3).size();
  int split = 255;
  while (split > 0 && log.size() * static_cast<size_t>(split - 1) / 256 > last_start + 16) --split;
  Write("store_recovery", "torn_across_segments",
        std::string{'\x01', static_cast<char>(split)} + log);
  Write("store_recovery", "torn_across_segments_rebuilt",
        std::string{'\x1d', static_cast<char>(split)} + log);
  Write("store_recovery", "zero_filled_tail",
        std::string("\x00\x00", 2) + log + std::string(64, '\0'));
}

// One request of the NameServer target: [kind][u16 length, little-endian][proto].
std::string Chunk(uint8_t kind, const google::protobuf::Message& m) {
  const std::string bytes = m.SerializeAsString();
  std::string out;
  out.push_back(static_cast<char>(kind));
  out.push_back(static_cast<char>(bytes.size() & 0xff));
  out.push_back(static_cast<char>(bytes.size() >> 8));
  return out + bytes;
}

void NameServer() {
  nsv1::RegisterBrokerRequest reg;
  auto* r = reg.mutable_registration();
  r->set_cluster_name("DefaultCluster");
  r->set_broker_name("broker-a");
  r->set_broker_id(0);
  r->set_client_endpoint("127.0.0.1:8081");
  r->set_ha_endpoint("127.0.0.1:10912");
  r->set_data_version(3);
  r->set_full(true);
  auto* topic = r->add_topics();
  topic->set_name("Orders");
  topic->set_read_queues(8);
  topic->set_write_queues(8);
  topic->set_permission(nsv1::TOPIC_PERMISSION_READ_WRITE);
  topic->set_message_type(nsv1::TOPIC_MESSAGE_TYPE_NORMAL);
  Write("nameserver_registration", "register", Chunk(0, reg));
  nsv1::BrokerSessionRequest session;
  *session.mutable_registration() = reg.registration();
  session.mutable_registration()->set_broker_id(1);
  Write("nameserver_registration", "session", Chunk(1, session));
  nsv1::UnregisterBrokerRequest unreg;
  unreg.set_cluster_name("DefaultCluster");
  unreg.set_broker_name("broker-a");
  nsv1::GetRouteRequest get;
  get.set_topic("Orders");
  Write("nameserver_registration", "sequence",
        Chunk(0, reg) + Chunk(1, session) + Chunk(3, get) + Chunk(4, get) + Chunk(2, unreg) +
            Chunk(3, get) + Chunk(5, get));
}

void AdminCli() {
  const std::vector<std::vector<std::string>> lines = {
      {"", "cluster", "list"},
      {"127.0.0.1:9876", "topic", "create", "--name=Orders", "--queues=8", "--broker=broker-a"},
      {"", "group", "reset-offset", "--group=PushGroup", "--topic=Orders",
       "--to-time=2026-11-27T00:00:00Z", "--json"},
      {"", "message", "send", "--topic=Orders", "--key=order-1", "--tag=TagA", "--body=hello"},
      {"", "broker", "promote", "--broker=broker-a", "--id=0",
       "--nameservers=127.0.0.1:9876,127.0.0.1:9886"},
      {"", "message", "find", "--topic=Orders", "--from=2026-11-27T00:00:00Z"},
  };
  int n = 0;
  for (const auto& words : lines) {
    Write("admin_cli", absl::StrCat("line_", n++), absl::StrJoin(words, std::string(1, '\0')));
  }
}

}  // namespace
}  // namespace apogee

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  apogee::g_out = argv[1];
  apogee::V2Requests();
  apogee::PushAdmin();
  apogee::Store();
  apogee::NameServer();
  apogee::AdminCli();
  return 0;
}
