#include "services/common/rocketmq/v2_route.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::rocketmq {
namespace {

namespace nsv1 = ::apogee::nameserver::v1;
using ::testing::ElementsAre;

nsv1::GetRouteResponse Route(int read, int write, nsv1::TopicPermission perm,
                             std::vector<std::pair<int64_t, std::string>> brokers) {
  nsv1::GetRouteResponse route;
  route.set_topic("T");
  nsv1::QueueData* q = route.add_queues();
  q->set_broker_name("broker-a");
  q->set_read_queues(read);
  q->set_write_queues(write);
  q->set_permission(perm);
  nsv1::BrokerGroup* g = route.add_broker_groups();
  g->set_broker_name("broker-a");
  for (auto& [id, endpoint] : brokers) {
    nsv1::BrokerInstance* b = g->add_brokers();
    b->set_broker_id(id);
    b->set_client_endpoint(endpoint);
  }
  return route;
}

TEST(V2RouteTest, MasterQueuesPointAtItsEndpoint) {
  auto queues = ToV2MessageQueues(Route(4, 4, nsv1::TOPIC_PERMISSION_READ_WRITE,
                                        {{0, "127.0.0.1:8081"}, {1, "10.0.0.2:8081"}}));
  ASSERT_TRUE(queues.ok()) << queues.status();
  ASSERT_EQ(queues->size(), 4u);  // slaves are not listed beside a live master
  for (int i = 0; i < 4; ++i) {
    const v2::MessageQueue& q = (*queues)[i];
    EXPECT_EQ(q.id(), i);
    EXPECT_EQ(q.topic().name(), "T");
    EXPECT_EQ(q.permission(), v2::READ_WRITE);
    EXPECT_EQ(q.broker().name(), "broker-a");
    EXPECT_EQ(q.broker().id(), 0);
    EXPECT_EQ(q.broker().endpoints().scheme(), v2::IPv4);
    ASSERT_EQ(q.broker().endpoints().addresses_size(), 1);
    EXPECT_EQ(q.broker().endpoints().addresses(0).host(), "127.0.0.1");
    EXPECT_EQ(q.broker().endpoints().addresses(0).port(), 8081);
  }
  EXPECT_THAT((*queues)[0].accept_message_types(),
              ElementsAre(v2::NORMAL, v2::FIFO, v2::DELAY, v2::TRANSACTION));
}

TEST(V2RouteTest, UnevenQueueCountsGiveReadOnlyOrWriteOnlyTails) {
  auto queues = ToV2MessageQueues(Route(2, 4, nsv1::TOPIC_PERMISSION_READ_WRITE, {{0, "h:1"}}));
  ASSERT_TRUE(queues.ok());
  ASSERT_EQ(queues->size(), 4u);
  EXPECT_EQ((*queues)[0].permission(), v2::READ_WRITE);
  EXPECT_EQ((*queues)[1].permission(), v2::READ_WRITE);
  EXPECT_EQ((*queues)[2].permission(), v2::WRITE);
  EXPECT_EQ((*queues)[3].permission(), v2::WRITE);
  EXPECT_EQ((*queues)[0].broker().endpoints().scheme(), v2::DOMAIN_NAME);
}

TEST(V2RouteTest, TopicPermissionMasksQueues) {
  auto queues = ToV2MessageQueues(Route(2, 2, nsv1::TOPIC_PERMISSION_READ, {{0, "h:1"}}));
  ASSERT_TRUE(queues.ok());
  EXPECT_EQ((*queues)[0].permission(), v2::READ);
}

TEST(V2RouteTest, GroupWithoutMasterIsReadOnlyThroughSlave) {
  auto queues = ToV2MessageQueues(Route(2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE, {{1, "s:1"}}));
  ASSERT_TRUE(queues.ok());
  ASSERT_EQ(queues->size(), 2u);
  EXPECT_EQ((*queues)[0].permission(), v2::READ);
  EXPECT_EQ((*queues)[0].broker().id(), 1);
}

TEST(V2RouteTest, TypedTopicAcceptsItsTypeOnly) {
  nsv1::GetRouteResponse route = Route(1, 1, nsv1::TOPIC_PERMISSION_READ_WRITE, {{0, "h:1"}});
  route.mutable_queues(0)->set_message_type(nsv1::TOPIC_MESSAGE_TYPE_FIFO);
  auto queues = ToV2MessageQueues(route);
  ASSERT_TRUE(queues.ok());
  EXPECT_THAT((*queues)[0].accept_message_types(), ElementsAre(v2::FIFO));
}

TEST(V2RouteTest, QueryRouteAddsAWriteOnlyStandbyQueuePerOtherMember) {
  auto queues = ToV2QueryRouteQueues(Route(4, 4, nsv1::TOPIC_PERMISSION_READ_WRITE,
                                           {{0, "127.0.0.1:8081"}, {1, "127.0.0.1:8091"}}));
  ASSERT_TRUE(queues.ok()) << queues.status();
  ASSERT_EQ(queues->size(), 5u);
  const v2::MessageQueue& standby = (*queues)[4];
  EXPECT_EQ(standby.id(), 0);
  EXPECT_EQ(standby.permission(), v2::WRITE);  // never read twice
  EXPECT_EQ(standby.broker().name(), "broker-a");
  EXPECT_EQ(standby.broker().id(), 0);  // official clients write to id 0 only
  EXPECT_EQ(standby.broker().endpoints().addresses(0).port(), 8091);
  EXPECT_EQ((*queues)[0].broker().endpoints().addresses(0).port(), 8081);
}

TEST(V2RouteTest, NoStandbyQueueWithoutALiveWriterOrWritePermission) {
  auto writerless = ToV2QueryRouteQueues(
      Route(2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE, {{1, "s:1"}, {2, "t:1"}}));
  ASSERT_TRUE(writerless.ok());
  EXPECT_EQ(writerless->size(), 2u);
  auto read_only =
      ToV2QueryRouteQueues(Route(2, 2, nsv1::TOPIC_PERMISSION_READ, {{0, "m:1"}, {1, "s:1"}}));
  ASSERT_TRUE(read_only.ok());
  EXPECT_EQ(read_only->size(), 2u);
  auto alone = ToV2QueryRouteQueues(Route(2, 2, nsv1::TOPIC_PERMISSION_READ_WRITE, {{0, "m:1"}}));
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(alone->size(), 2u);
}

}  // namespace
}  // namespace apogee::rocketmq
