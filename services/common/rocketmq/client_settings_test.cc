#include "services/common/rocketmq/client_settings.h"

#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::rocketmq {
namespace {

TEST(ClientSettingsTest, ProducerGetsExponentialBackoffAndBodyLimit) {
  v2::Settings client;
  client.set_client_type(v2::PRODUCER);
  client.mutable_publishing()->add_topics()->set_name("T");
  client.mutable_user_agent()->set_language(v2::NODE_JS);
  auto reply = ReplySettings(client, SettingsPolicy{}, false);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->backoff_policy().has_exponential_backoff());
  EXPECT_EQ(reply->backoff_policy().max_attempts(), 3);
  EXPECT_EQ(reply->backoff_policy().exponential_backoff().initial().nanos(), 10'000'000);
  EXPECT_EQ(reply->publishing().max_body_size(), 4 * 1024 * 1024);
  EXPECT_TRUE(reply->publishing().validate_message_type());
  EXPECT_EQ(reply->publishing().topics(0).name(), "T");  // echoed
  EXPECT_EQ(reply->user_agent().language(), v2::NODE_JS);
  EXPECT_FALSE(reply->metric().on());
}

TEST(ClientSettingsTest, PushConsumerGetsBatchSizeAndPollTime) {
  v2::Settings client;
  client.set_client_type(v2::PUSH_CONSUMER);
  client.mutable_subscription()->mutable_group()->set_name("G");
  auto reply = ReplySettings(client, SettingsPolicy{}, true);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->subscription().receive_batch_size(), 32);
  EXPECT_EQ(reply->subscription().long_polling_timeout().seconds(), 20);
  EXPECT_TRUE(reply->subscription().fifo());
  EXPECT_EQ(reply->backoff_policy().max_attempts(), 17);
  EXPECT_TRUE(reply->backoff_policy().has_exponential_backoff());
}

TEST(ClientSettingsTest, SimpleConsumerKeepsItsOwnPollTime) {
  v2::Settings client;
  client.set_client_type(v2::SIMPLE_CONSUMER);
  client.mutable_subscription()->mutable_long_polling_timeout()->set_seconds(5);
  auto reply = ReplySettings(client, SettingsPolicy{}, false);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->subscription().long_polling_timeout().seconds(), 5);
}

TEST(ClientSettingsTest, UnknownOrMismatchedTypeIsRejected) {
  v2::Settings client;
  EXPECT_EQ(ToV2Code(ReplySettings(client, SettingsPolicy{}, false).status()),
            v2::UNRECOGNIZED_CLIENT_TYPE);
  client.set_client_type(v2::PRODUCER);
  client.mutable_subscription();
  EXPECT_EQ(ToV2Code(ReplySettings(client, SettingsPolicy{}, false).status()),
            v2::UNRECOGNIZED_CLIENT_TYPE);
}

}  // namespace
}  // namespace apogee::rocketmq
