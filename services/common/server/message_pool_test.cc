#include "services/common/server/message_pool.h"

#include <memory>
#include <string>

#include "apache/rocketmq/v2/service.pb.h"
#include "gtest/gtest.h"
#include "services/common/server/with_bytes.h"

namespace apogee {
namespace {

namespace v2 = ::apache::rocketmq::v2;

TEST(MessagePoolTest, AMessageComesBackClearedWithItsMemory) {
  MessagePool<v2::SendMessageRequest> pool(/*max_bytes_each=*/1 << 20, /*max_bytes=*/8 << 20);
  std::unique_ptr<v2::SendMessageRequest> request = pool.Take();
  request->add_messages()->set_body(std::string(4096, 'x'));
  const v2::SendMessageRequest* given = request.get();
  pool.Give(std::move(request), 4100);
  if (!kPoolKeepsMessages) {  // AddressSanitizer: every message is freed
    EXPECT_EQ(pool.kept(), 0);
    return;
  }
  EXPECT_EQ(pool.kept(), 1);
  std::unique_ptr<v2::SendMessageRequest> again = pool.Take();
  EXPECT_EQ(again.get(), given);
  EXPECT_EQ(again->messages_size(), 0);
  // The cleared element and its body's buffer stay for the next parse.
  EXPECT_EQ(again->messages().ClearedCount(), 1);
  EXPECT_EQ(pool.kept(), 0);
  EXPECT_NE(pool.Take().get(), given);  // empty: a new one
}

TEST(MessagePoolTest, KeepsNeitherALargeMessageNorMoreThanItsBudget) {
  MessagePool<WithBytes<v2::SendMessageRequest>> pool(/*max_bytes_each=*/1000,
                                                      /*max_bytes=*/2500);
  auto large = pool.Take();
  large->bytes.assign(1001, 'x');
  pool.Give(std::move(large), 1001);
  EXPECT_EQ(pool.kept(), 0);
  for (int i = 0; i < 3; ++i) {
    auto each = std::make_unique<WithBytes<v2::SendMessageRequest>>();
    each->bytes.assign(1000, 'x');
    pool.Give(std::move(each), 1000);
  }
  EXPECT_EQ(pool.kept(), kPoolKeepsMessages ? 2 : 0);  // the third would pass 2500
  if (kPoolKeepsMessages) {
    EXPECT_TRUE(pool.Take()->bytes.empty());
  }
  pool.Give(nullptr, 0);  // a call that never took one
  EXPECT_EQ(pool.kept(), kPoolKeepsMessages ? 1 : 0);
}

}  // namespace
}  // namespace apogee
