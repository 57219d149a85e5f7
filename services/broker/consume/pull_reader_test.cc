#include "services/broker/consume/pull_reader.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/broker/message/codec.h"

namespace apogee::broker {
namespace {

// A read of records at queue offsets first, first+1, ... with these tags.
store::v1::ReadResponse ReadOf(int64_t first, const std::vector<std::string>& tags) {
  store::v1::ReadResponse response;
  for (size_t i = 0; i < tags.size(); ++i) {
    const int64_t offset = first + static_cast<int64_t>(i);
    v2::Message m;
    m.mutable_topic()->set_name("T");
    m.mutable_system_properties()->set_message_id(absl::StrCat("id-", offset));
    m.mutable_system_properties()->set_tag(tags[i]);
    m.set_body(absl::StrCat("body-", offset));
    store::v1::StoredRecord* r = response.add_records();
    r->set_topic("T");
    r->set_queue_offset(offset);
    r->set_commit_log_offset(1000 + offset);
    r->set_body(ToStoreRecord(m, "T", 0, "b:1", "c:2").body());
  }
  response.set_next_offset(first + static_cast<int64_t>(tags.size()));
  return response;
}

MessageFilter Tags(const std::string& expression) {
  v2::FilterExpression e;
  e.set_type(v2::TAG);
  e.set_expression(expression);
  return *MessageFilter::Parse(e);
}

std::vector<std::string> Ids(const Pulled& p) {
  std::vector<std::string> ids;
  for (const v2::Message& m : p.messages) ids.push_back(m.system_properties().message_id());
  return ids;
}

TEST(SelectPulledTest, NothingAtTheOffsetParks) {
  Pulled p = SelectPulled(ReadOf(5, {}), 5, 32, MessageFilter());
  EXPECT_TRUE(p.at_end);
  EXPECT_TRUE(p.messages.empty());
  EXPECT_EQ(p.next_offset, 5);
  EXPECT_EQ(p.last_commit_log_offset, -1);
}

TEST(SelectPulledTest, StopsAtTheBatchAndResumesAtTheFirstRecordReadAhead) {
  // Matches at 10, 12, 13; the batch of 2 ends at 12, so 13 is read ahead.
  Pulled p = SelectPulled(ReadOf(10, {"A", "B", "A", "A", "B"}), 10, 2, Tags("A"));
  EXPECT_FALSE(p.at_end);
  EXPECT_EQ(Ids(p), (std::vector<std::string>{"id-10", "id-12"}));
  EXPECT_EQ(p.next_offset, 13);
  EXPECT_EQ(p.last_commit_log_offset, 1012);
  EXPECT_EQ(p.messages[1].system_properties().queue_offset(), 12);
}

TEST(SelectPulledTest, SkipsWhatDoesNotMatchOrDecodeAndMovesPastIt) {
  store::v1::ReadResponse read = ReadOf(0, {"A", "B", "A"});
  read.mutable_records(2)->set_body("\xff\xff not a message");
  Pulled p = SelectPulled(read, 0, 32, Tags("A"));
  EXPECT_EQ(Ids(p), (std::vector<std::string>{"id-0"}));
  EXPECT_EQ(p.next_offset, 3);  // past all three
  EXPECT_EQ(p.last_commit_log_offset, 1002);

  Pulled none = SelectPulled(read, 0, 32, Tags("C"));
  EXPECT_TRUE(none.messages.empty());
  EXPECT_FALSE(none.at_end);  // records were read: report progress, do not park
  EXPECT_EQ(none.next_offset, 3);
}

}  // namespace
}  // namespace apogee::broker
