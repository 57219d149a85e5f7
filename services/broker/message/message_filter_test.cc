#include "services/broker/message/message_filter.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v2::FilterExpression Expr(v2::FilterType type, const std::string& text) {
  v2::FilterExpression e;
  e.set_type(type);
  e.set_expression(text);
  return e;
}

v2::Message Msg(const std::string& tag, std::map<std::string, std::string> properties) {
  v2::Message m;
  if (!tag.empty()) m.mutable_system_properties()->set_tag(tag);
  for (auto& [k, v] : properties) (*m.mutable_user_properties())[k] = v;
  return m;
}

TEST(MessageFilterTest, TagFilterParsesStarAndAlternatives) {
  auto all = MessageFilter::Parse(Expr(v2::TAG, "*"));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->all());
  EXPECT_TRUE(all->Matches(Msg("anything", {})));
  EXPECT_TRUE(MessageFilter::Parse(Expr(v2::TAG, ""))->all());
  EXPECT_TRUE(MessageFilter::Parse(Expr(v2::FILTER_TYPE_UNSPECIFIED, "A||*"))->all());

  auto two = MessageFilter::Parse(Expr(v2::TAG, "TagA || TagB"));
  ASSERT_TRUE(two.ok());
  EXPECT_FALSE(two->all());
  EXPECT_TRUE(two->Matches(Msg("TagA", {})));
  EXPECT_TRUE(two->Matches(Msg("TagB", {})));
  EXPECT_FALSE(two->Matches(Msg("TagC", {})));
  EXPECT_FALSE(two->Matches(Msg("", {})));
  // A tag filter decides on a stored record's tag alone.
  EXPECT_TRUE(two->by_tag_only());
  EXPECT_TRUE(two->MatchesTag("TagB"));
  EXPECT_FALSE(two->MatchesTag("TagC"));
  EXPECT_TRUE(all->MatchesTag(""));
  store::v1::ReadRequest read;
  two->NarrowRead(&read);
  EXPECT_THAT(read.tags(), ElementsAre("TagA", "TagB"));
  EXPECT_EQ(two->RecordsToRead(5), 5);

  auto bad = MessageFilter::Parse(Expr(v2::TAG, "a||||b"));
  EXPECT_EQ(ToV2Code(bad.status()), v2::ILLEGAL_FILTER_EXPRESSION);
  EXPECT_THAT(bad.status().message(), HasSubstr("has an empty tag"));
}

TEST(MessageFilterTest, SqlFilterSeesUserPropertiesAndTheTag) {
  auto sql = MessageFilter::Parse(Expr(v2::SQL, "a > 5 AND TAGS IN ('TagA', 'TagB')"));
  ASSERT_TRUE(sql.ok()) << sql.status();
  EXPECT_FALSE(sql->all());
  EXPECT_TRUE(sql->Matches(Msg("TagA", {{"a", "6"}})));
  EXPECT_FALSE(sql->Matches(Msg("TagA", {{"a", "5"}})));
  EXPECT_FALSE(sql->Matches(Msg("TagC", {{"a", "6"}})));
  EXPECT_FALSE(sql->Matches(Msg("TagA", {})));            // a is NULL: UNKNOWN
  EXPECT_FALSE(sql->Matches(Msg("TagA", {{"a", "x"}})));  // not a number: UNKNOWN
  EXPECT_FALSE(sql->by_tag_only());                       // the properties are inside the body
  // The store skips the tags the expression rules out; SQL reads ahead.
  store::v1::ReadRequest read;
  sql->NarrowRead(&read);
  EXPECT_THAT(read.tags(), ElementsAre("TagA", "TagB"));
  EXPECT_GT(sql->RecordsToRead(1), 1);
  EXPECT_EQ(sql->RecordsToRead(1000), 1000);
  auto any_tag = MessageFilter::Parse(Expr(v2::SQL, "a > 5 OR TAGS = 'TagA'"));
  ASSERT_TRUE(any_tag.ok());
  store::v1::ReadRequest unnarrowed;
  any_tag->NarrowRead(&unnarrowed);
  EXPECT_EQ(unnarrowed.tags_size(), 0);
  EXPECT_TRUE(any_tag->Matches(Msg("TagC", {{"a", "6"}})));

  auto untagged = MessageFilter::Parse(Expr(v2::SQL, "TAGS IS NULL"));
  ASSERT_TRUE(untagged.ok());
  EXPECT_TRUE(untagged->Matches(Msg("", {{"a", "1"}})));
  EXPECT_FALSE(untagged->Matches(Msg("TagA", {})));
}

TEST(MessageFilterTest, MalformedSqlIsIllegalFilterExpressionNamingThePosition) {
  auto bad = MessageFilter::Parse(Expr(v2::SQL, "a > 'x'"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToV2Code(bad.status()), v2::ILLEGAL_FILTER_EXPRESSION);
  EXPECT_THAT(bad.status().message(), HasSubstr("SQL filter \"a > 'x'\" at position 5"));
  auto empty = MessageFilter::Parse(Expr(v2::SQL, ""));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(ToV2Code(empty.status()), v2::ILLEGAL_FILTER_EXPRESSION);
}

TEST(MessageFilterTest, SqlComesFromTheCacheWhenGiven) {
  filter::SqlFilterCache cache(8);
  ASSERT_TRUE(MessageFilter::Parse(Expr(v2::SQL, "b = 'x'"), &cache).ok());
  ASSERT_TRUE(MessageFilter::Parse(Expr(v2::SQL, "b = 'x'"), &cache).ok());
  EXPECT_EQ(cache.compilations(), 1);
  auto bad = MessageFilter::Parse(Expr(v2::SQL, "b = "), &cache);
  EXPECT_EQ(ToV2Code(bad.status()), v2::ILLEGAL_FILTER_EXPRESSION);
}

}  // namespace
}  // namespace apogee::broker
