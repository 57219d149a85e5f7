#include "services/common/naming/names.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee {
namespace {

using ::testing::HasSubstr;

TEST(TopicNameTest, AcceptsRocketMqCharacters) {
  EXPECT_TRUE(ValidateTopicName("topic", "Topic_A-1").ok());
  EXPECT_TRUE(ValidateTopicName("topic", "%RETRY%group|x").ok());
  EXPECT_TRUE(ValidateTopicName("topic", std::string(127, 'a')).ok());
}

TEST(TopicNameTest, RejectsWithFieldValueAndRule) {
  absl::Status s = ValidateTopicName("topic", "a b");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("topic \"a b\" has invalid character ' ' at 1"));
  EXPECT_THAT(s.message(), HasSubstr("[%|a-zA-Z0-9_-]"));
  EXPECT_THAT(ValidateTopicName("req.topic", "").message(), HasSubstr("req.topic is empty"));
  EXPECT_THAT(ValidateTopicName("topic", std::string(128, 'a')).message(),
              HasSubstr("128 chars long (max 127)"));
  EXPECT_THAT(ValidateTopicName("topic", std::string("a\x01", 2)).message(), HasSubstr("'\\x01'"));
}

TEST(GroupNameTest, LimitIs120) {
  EXPECT_TRUE(ValidateGroupName("group", std::string(120, 'g')).ok());
  EXPECT_FALSE(ValidateGroupName("group", std::string(121, 'g')).ok());
}

TEST(MessageIdTest, AcceptsRocketMqIdsUpTo128VisibleChars) {
  EXPECT_TRUE(ValidateMessageId("message_id", "01C0A8000A2A1B2C3D4E5F60718293A4B5").ok());
  EXPECT_TRUE(ValidateMessageId("message_id", "my-id_1:2/3").ok());
  EXPECT_TRUE(ValidateMessageId("message_id", std::string(kMaxMessageIdLength, 'f')).ok());
}

TEST(MessageIdTest, RejectsControlCharsBlanksAndLongIdsNamingThem) {
  absl::Status newline = ValidateMessageId("messages[0].message_id", "ab\ncd");
  EXPECT_EQ(newline.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(newline.message(), HasSubstr("messages[0].message_id \"ab\\ncd\" has invalid "
                                           "character '\\x0a' at 2 (allowed: visible ASCII"));
  EXPECT_THAT(ValidateMessageId("id", std::string("a\0b", 3)).message(),
              HasSubstr("invalid character '\\x00' at 1"));
  EXPECT_THAT(ValidateMessageId("id", " ").message(), HasSubstr("invalid character ' ' at 0"));
  EXPECT_THAT(ValidateMessageId("id", "").message(), HasSubstr("id is empty"));
  EXPECT_THAT(ValidateMessageId("id", std::string(129, 'f')).message(),
              HasSubstr("129 chars long (max 128)"));
  EXPECT_FALSE(ValidateMessageId("id", "caf\xc3\xa9").ok());  // non-ASCII
}

TEST(NodeNameTest, AllowsDotsButNotPercent) {
  EXPECT_TRUE(ValidateNodeName("broker_name", "broker-a.zone1").ok());
  EXPECT_FALSE(ValidateNodeName("broker_name", "broker%a").ok());
}

TEST(HostPortTest, ParsesIpv4AndDnsNames) {
  auto ip = ParseHostPort("endpoint", "127.0.0.1:8081");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_EQ(ip->host, "127.0.0.1");
  EXPECT_EQ(ip->port, 8081);
  EXPECT_TRUE(ip->host_is_ipv4);

  auto dns = ParseHostPort("endpoint", "broker-0.broker.apogee.svc.cluster.local:8081");
  ASSERT_TRUE(dns.ok()) << dns.status();
  EXPECT_FALSE(dns->host_is_ipv4);
}

TEST(HostPortTest, RejectsBadInputNamingIt) {
  EXPECT_THAT(ParseHostPort("client_endpoint", "localhost").status().message(),
              HasSubstr("client_endpoint \"localhost\" has no port"));
  EXPECT_THAT(ParseHostPort("client_endpoint", "host:0").status().message(),
              HasSubstr("invalid port \"0\""));
  EXPECT_THAT(ParseHostPort("client_endpoint", "host:70000").status().message(),
              HasSubstr("invalid port"));
  EXPECT_THAT(ParseHostPort("client_endpoint", "bad_host:80").status().message(),
              HasSubstr("invalid host \"bad_host\""));
  EXPECT_FALSE(ParseHostPort("client_endpoint", "-a.b:80").ok());
}

TEST(NamesTest, ReservedPropertyKeysAreRocketMqSystemKeys) {
  EXPECT_TRUE(IsReservedPropertyKey("KEYS"));
  EXPECT_TRUE(IsReservedPropertyKey("UNIQ_KEY"));
  EXPECT_TRUE(IsReservedPropertyKey("__BORNHOST"));
  EXPECT_FALSE(IsReservedPropertyKey("keys"));
  EXPECT_FALSE(IsReservedPropertyKey("color"));
}

TEST(NamesTest, SystemTopicsAreRefusedToClientsNamingTheTopic) {
  EXPECT_TRUE(IsSystemTopic(kTimerTopic));
  EXPECT_TRUE(IsSystemTopic("rmq_sys_anything"));
  EXPECT_TRUE(IsSystemTopic("RMQ_SYS_TRANS_HALF_TOPIC"));
  EXPECT_TRUE(IsSystemTopic("TBW102"));
  EXPECT_FALSE(IsSystemTopic("rmq_sysX"));
  EXPECT_FALSE(IsSystemTopic("%RETRY%group"));
  EXPECT_FALSE(IsSystemTopic("Orders"));
  absl::Status s = ValidateClientTopic("messages[0].topic", "rmq_sys_wheel_timer");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(),
              HasSubstr("messages[0].topic \"rmq_sys_wheel_timer\" is a system topic"));
  EXPECT_EQ(ValidateClientTopic("topic", "a b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateClientTopic("topic", "Orders").ok());
}

}  // namespace
}  // namespace apogee
