#include "services/broker/filter/sql_filter_cache.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::broker::filter {
namespace {

using ::testing::HasSubstr;

TEST(SqlFilterCacheTest, CompilesAnExpressionOnce) {
  SqlFilterCache cache(4);
  auto first = cache.Get("a > 5");
  auto second = cache.Get("a > 5");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ(cache.compilations(), 1);
  EXPECT_EQ((*first)->expression(), "a > 5");
}

TEST(SqlFilterCacheTest, EvictsTheLeastRecentlyUsed) {
  SqlFilterCache cache(2);
  ASSERT_TRUE(cache.Get("a = 1").ok());
  ASSERT_TRUE(cache.Get("a = 2").ok());
  ASSERT_TRUE(cache.Get("a = 1").ok());  // now the most recent
  ASSERT_TRUE(cache.Get("a = 3").ok());  // evicts "a = 2"
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.compilations(), 3);
  ASSERT_TRUE(cache.Get("a = 1").ok());
  EXPECT_EQ(cache.compilations(), 3);
  ASSERT_TRUE(cache.Get("a = 2").ok());
  EXPECT_EQ(cache.compilations(), 4);
}

TEST(SqlFilterCacheTest, ErrorsAreReturnedAndNotKept) {
  SqlFilterCache cache(4);
  auto bad = cache.Get("a >");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("at position 4"));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(SqlFilterCacheTest, ConcurrentGetsAgreeAndStayBounded) {
  SqlFilterCache cache(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 200; ++i) {
        auto f = cache.Get(absl::StrCat("a = ", (i + t) % 16));
        EXPECT_TRUE(f.ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(cache.size(), 8u);
}

}  // namespace
}  // namespace apogee::broker::filter
