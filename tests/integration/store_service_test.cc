// apogee-store integration tests: a real apogee-store process in a temp dir,
// served on a unix socket (and on TCP), driven by raw apogee.store.v1 stubs
// the way the broker's store client drives it (pipelined Append stream,
// unary calls for everything else).
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"

#ifndef APOGEE_STORE_BIN
#error "APOGEE_STORE_BIN must name the apogee-store binary"
#endif

namespace apogee {
namespace {

namespace sv1 = ::apogee::store::v1;
using ::apogee::testing::HttpGet;
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) {
  return testing::DeadlineContext(timeout);
}

// Record `i` of the test data set.
sv1::AppendRecord MakeRecord(const std::string& topic, int32_t queue, int i) {
  sv1::AppendRecord r;
  r.set_topic(topic);
  r.set_queue_id(queue);
  r.set_message_id(absl::StrCat("msg-", topic, "-", i));
  r.add_keys(absl::StrCat("key-", i));
  r.add_keys(absl::StrCat("order-", i / 10));
  r.set_tag(i % 3 == 0 ? "TagA" : "TagB");
  *r.mutable_born_time() = TimeUtil::MillisecondsToTimestamp(1'700'000'000'000 + i);
  r.set_flags(static_cast<uint32_t>(i));
  r.set_body(absl::StrCat("body-", i, std::string("\0\x01\xff", 3), std::string(i % 200, 'x')));
  return r;
}

// Writes every request on one Append stream without waiting for answers
// (a reader thread collects them), then half-closes and returns the answers.
std::vector<sv1::AppendResponse> AppendPipelined(sv1::Store::Stub* stub,
                                                 const std::vector<sv1::AppendRequest>& requests) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto stream = stub->Append(&context);
  std::vector<sv1::AppendResponse> responses;
  std::thread reader([&] {
    sv1::AppendResponse response;
    while (stream->Read(&response)) responses.push_back(response);
  });
  for (const sv1::AppendRequest& request : requests) {
    if (!stream->Write(request)) break;
  }
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return responses;
}

class StoreServiceTest : public ::testing::Test {
 protected:
  // Starts apogee-store on a unix socket in the temp dir (or on
  // 127.0.0.1:0 when `tcp`).
  void Start(bool tcp = false, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {absl::StrCat("--data_dir=", dir_.path(), "/data"),
                                     "--metrics_listen=127.0.0.1:0", "--segment_size=1MiB",
                                     "--max_body_size=64KiB", "--flush_interval=50ms"};
    if (!tcp) args.push_back(absl::StrCat("--listen=unix:", dir_.path(), "/store.sock"));
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = ServiceProcess::Start("store", APOGEE_STORE_BIN, args, dir_.path());
    ASSERT_TRUE(process.ok()) << process.status();
    store_ = std::move(process).value();
    Connect();
  }

  void Connect() {
    stub_ = sv1::Store::NewStub(
        grpc::CreateChannel(store_->address(), grpc::InsecureChannelCredentials()));
  }

  void Restart() {
    ASSERT_TRUE(store_->Restart(/*same_port=*/false).ok()) << store_->LogTail();
    Connect();
  }

  void PutTopic(const std::string& name, int32_t queues, const std::string& attributes = "") {
    sv1::PutTopicRequest request;
    request.mutable_topic()->set_name(name);
    request.mutable_topic()->set_queue_count(queues);
    request.mutable_topic()->set_attributes(attributes);
    sv1::PutTopicResponse response;
    grpc::Status s = stub_->PutTopic(Context().get(), request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  grpc::Status Read(const std::string& topic, int32_t queue, int64_t offset, int max,
                    sv1::ReadResponse* response, std::vector<std::string> tags = {}) {
    sv1::ReadRequest request;
    request.set_topic(topic);
    request.set_queue_id(queue);
    request.set_offset(offset);
    request.set_max_messages(max);
    for (const std::string& t : tags) request.add_tags(t);
    return stub_->Read(Context().get(), request, response);
  }

  // Waits until reads see `max` records in the queue: appends are
  // acknowledged before the indexes (which reads use) catch up.
  void WaitIndexed(const std::string& topic, int32_t queue, int64_t max) {
    sv1::GetQueueOffsetsRequest request;
    request.set_topic(topic);
    request.set_queue_id(queue);
    sv1::GetQueueOffsetsResponse response;
    ASSERT_TRUE(testing::PollUntil(
        [&] {
          return stub_->GetQueueOffsets(Context().get(), request, &response).ok() &&
                 response.max_offset() >= max;
        },
        absl::Seconds(20)))
        << topic << "/" << queue << " max_offset " << response.max_offset() << ", want " << max;
  }

  // The whole queue from `from`, in pages.
  std::vector<sv1::StoredRecord> ReadAll(const std::string& topic, int32_t queue,
                                         int64_t from = 0) {
    std::vector<sv1::StoredRecord> out;
    int64_t offset = from;
    for (int page = 0; page < 1000; ++page) {
      sv1::ReadResponse response;
      grpc::Status s = Read(topic, queue, offset, 100, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok() || response.records_size() == 0) break;
      for (const auto& r : response.records()) out.push_back(r);
      offset = response.next_offset();
    }
    return out;
  }

  // 50 pipelined batches of 10 records over queues 0 and 1 of "Orders".
  void AppendDataSet() {
    std::vector<sv1::AppendRequest> requests;
    for (int b = 0; b < 50; ++b) {
      sv1::AppendRequest request;
      request.set_request_id(1000 + b);
      for (int j = 0; j < 10; ++j) *request.add_records() = MakeRecord("Orders", b % 2, b * 10 + j);
      requests.push_back(std::move(request));
    }
    std::vector<sv1::AppendResponse> responses = AppendPipelined(stub_.get(), requests);
    ASSERT_EQ(responses.size(), 50u);
    std::map<int, int64_t> next;  // per queue
    for (int b = 0; b < 50; ++b) {
      const sv1::AppendResponse& r = responses[b];
      ASSERT_EQ(r.request_id(), 1000u + b) << "answers must come back in request order";
      ASSERT_EQ(r.code(), 0) << r.message();
      ASSERT_EQ(r.results_size(), 10);
      for (const sv1::AppendResult& result : r.results()) {
        EXPECT_EQ(result.queue_offset(), next[b % 2]++);
        EXPECT_GT(result.store_time().seconds(), 0);
      }
    }
    WaitIndexed("Orders", 0, 250);
    WaitIndexed("Orders", 1, 250);
  }

  // Everything AppendDataSet wrote is readable, with every field intact.
  void ExpectDataSet() {
    for (int queue = 0; queue < 2; ++queue) {
      std::vector<sv1::StoredRecord> records = ReadAll("Orders", queue);
      ASSERT_EQ(records.size(), 250u);
      int k = 0;
      for (int b = queue; b < 50; b += 2) {
        for (int j = 0; j < 10; ++j, ++k) {
          const int i = b * 10 + j;
          const sv1::AppendRecord want = MakeRecord("Orders", queue, i);
          const sv1::StoredRecord& got = records[k];
          EXPECT_EQ(got.queue_offset(), k);
          EXPECT_EQ(got.topic(), "Orders");
          EXPECT_EQ(got.queue_id(), queue);
          EXPECT_EQ(got.message_id(), want.message_id());
          EXPECT_THAT(got.keys(), ElementsAre(want.keys(0), want.keys(1)));
          EXPECT_EQ(got.tag(), want.tag());
          EXPECT_EQ(got.body(), want.body());
          EXPECT_EQ(got.flags(), want.flags());
          EXPECT_EQ(TimeUtil::TimestampToMilliseconds(got.born_time()),
                    TimeUtil::TimestampToMilliseconds(want.born_time()));
          EXPECT_GT(got.store_time().seconds(), 0);
        }
      }
    }
  }

  TempDir dir_;
  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<sv1::Store::Stub> stub_;
};

TEST_F(StoreServiceTest, PipelinedAppendsReadBackAndSurviveRestart) {
  Start();
  EXPECT_THAT(store_->address(), HasSubstr("unix:"));
  PutTopic("Orders", 4, std::string("opaque\0attrs", 12));
  AppendDataSet();
  ExpectDataSet();

  // Topics keep their opaque attributes.
  sv1::ListTopicsResponse topics;
  ASSERT_TRUE(stub_->ListTopics(Context().get(), {}, &topics).ok());
  ASSERT_EQ(topics.topics_size(), 1);
  EXPECT_EQ(topics.topics(0).name(), "Orders");
  EXPECT_EQ(topics.topics(0).queue_count(), 4);
  EXPECT_EQ(topics.topics(0).attributes(), std::string("opaque\0attrs", 12));

  // Offsets.
  sv1::CommitOffsetRequest commit;
  commit.set_group("GID_A");
  commit.set_topic("Orders");
  commit.set_queue_id(1);
  commit.set_offset(42);
  sv1::CommitOffsetResponse committed;
  ASSERT_TRUE(stub_->CommitOffset(Context().get(), commit, &committed).ok());
  sv1::PutGroupRequest put_group;
  put_group.mutable_group()->set_name("GID_A");
  put_group.mutable_group()->set_config("cfg");
  sv1::PutGroupResponse put_group_response;
  ASSERT_TRUE(stub_->PutGroup(Context().get(), put_group, &put_group_response).ok());

  ASSERT_EQ(store_->Stop(SIGTERM).value_or(-1), 0) << store_->LogTail();
  Restart();
  ExpectDataSet();

  sv1::FetchOffsetRequest fetch;
  fetch.set_group("GID_A");
  fetch.set_topic("Orders");
  fetch.set_queue_id(1);
  sv1::FetchOffsetResponse fetched;
  grpc::Status s = stub_->FetchOffset(Context().get(), fetch, &fetched);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(fetched.offset(), 42);
  fetch.set_queue_id(0);
  s = stub_->FetchOffset(Context().get(), fetch, &fetched);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "never committed";
  EXPECT_THAT(s.error_message(), HasSubstr("GID_A"));

  sv1::ListOffsetsRequest list;
  sv1::ListOffsetsResponse offsets;
  ASSERT_TRUE(stub_->ListOffsets(Context().get(), list, &offsets).ok());  // every group
  ASSERT_EQ(offsets.offsets_size(), 1);
  EXPECT_EQ(offsets.offsets(0).group(), "GID_A");
  EXPECT_EQ(offsets.offsets(0).offset(), 42);
  sv1::ListGroupsResponse groups;
  ASSERT_TRUE(stub_->ListGroups(Context().get(), {}, &groups).ok());
  ASSERT_EQ(groups.groups_size(), 1);
  EXPECT_EQ(groups.groups(0).config(), "cfg");

  ASSERT_TRUE(stub_->ListTopics(Context().get(), {}, &topics).ok());
  ASSERT_EQ(topics.topics_size(), 1);
  EXPECT_EQ(topics.topics(0).attributes(), std::string("opaque\0attrs", 12));

  // Appends continue where they stopped.
  std::vector<sv1::AppendRequest> more(1);
  more[0].set_request_id(7);
  *more[0].add_records() = MakeRecord("Orders", 0, 9999);
  auto responses = AppendPipelined(stub_.get(), more);
  ASSERT_EQ(responses.size(), 1u);
  ASSERT_EQ(responses[0].code(), 0) << responses[0].message();
  EXPECT_EQ(responses[0].results(0).queue_offset(), 250);
}

TEST_F(StoreServiceTest, FiltersByTagAndLooksUpByIdKeyAndTime) {
  Start();
  PutTopic("Orders", 2);
  const absl::Time before = absl::Now() - absl::Seconds(1);
  AppendDataSet();

  // Tag filter: only TagA records (i % 3 == 0); next_offset moves past the rest.
  std::vector<int64_t> tag_a;
  int64_t offset = 0;
  for (int page = 0; page < 100; ++page) {
    sv1::ReadResponse response;
    grpc::Status s = Read("Orders", 0, offset, 7, &response, {"TagA"});
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const auto& r : response.records()) {
      EXPECT_EQ(r.tag(), "TagA");
      tag_a.push_back(r.queue_offset());
    }
    ASSERT_GE(response.next_offset(), offset);
    if (response.next_offset() == offset) break;
    offset = response.next_offset();
  }
  EXPECT_EQ(offset, 250);
  std::vector<int64_t> want;
  int k = 0;
  for (int b = 0; b < 50; b += 2) {
    for (int j = 0; j < 10; ++j, ++k) {
      if ((b * 10 + j) % 3 == 0) want.push_back(k);
    }
  }
  EXPECT_EQ(tag_a, want);
  sv1::ReadResponse none;
  ASSERT_TRUE(Read("Orders", 0, 0, 32, &none, {"NoSuchTag"}).ok());
  EXPECT_EQ(none.records_size(), 0);
  EXPECT_GT(none.next_offset(), 0) << "skipped records still advance the offset";

  // By message id.
  sv1::LookupByIdRequest by_id;
  by_id.set_message_id("msg-Orders-123");
  sv1::LookupByIdResponse found;
  grpc::Status s = stub_->LookupById(Context().get(), by_id, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(found.records_size(), 1);
  EXPECT_EQ(found.records(0).body(), MakeRecord("Orders", 0, 123).body());
  EXPECT_EQ(found.records(0).queue_id(), 0);  // batch 12 went to queue 0
  by_id.set_message_id("msg-none");
  EXPECT_EQ(stub_->LookupById(Context().get(), by_id, &found).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // By key, with and without a time window.
  sv1::LookupByKeyRequest by_key;
  by_key.set_topic("Orders");
  by_key.set_key("order-7");  // records 70..79
  sv1::LookupByKeyResponse keyed;
  s = stub_->LookupByKey(Context().get(), by_key, &keyed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(keyed.records_size(), 10);
  EXPECT_EQ(keyed.records(0).message_id(), "msg-Orders-70");
  *by_key.mutable_begin_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(before));
  by_key.set_max_results(3);
  ASSERT_TRUE(stub_->LookupByKey(Context().get(), by_key, &keyed).ok());
  EXPECT_EQ(keyed.records_size(), 3);
  *by_key.mutable_begin_time() =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now() + absl::Hours(1)));
  EXPECT_EQ(stub_->LookupByKey(Context().get(), by_key, &keyed).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // By time, and the queue's range with store times.
  sv1::LookupOffsetByTimeRequest by_time;
  by_time.set_topic("Orders");
  by_time.set_queue_id(1);
  *by_time.mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(before));
  sv1::LookupOffsetByTimeResponse at;
  ASSERT_TRUE(stub_->LookupOffsetByTime(Context().get(), by_time, &at).ok());
  EXPECT_EQ(at.offset(), 0);
  *by_time.mutable_time() =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now() + absl::Hours(1)));
  ASSERT_TRUE(stub_->LookupOffsetByTime(Context().get(), by_time, &at).ok());
  EXPECT_EQ(at.offset(), 250);

  sv1::GetQueueOffsetsRequest range;
  range.set_topic("Orders");
  range.set_queue_id(1);
  sv1::GetQueueOffsetsResponse offsets;
  ASSERT_TRUE(stub_->GetQueueOffsets(Context().get(), range, &offsets).ok());
  EXPECT_EQ(offsets.min_offset(), 0);
  EXPECT_EQ(offsets.max_offset(), 250);
  EXPECT_GE(TimeUtil::TimestampToMilliseconds(offsets.min_store_time()),
            absl::ToUnixMillis(before));
  EXPECT_GE(TimeUtil::TimestampToMilliseconds(offsets.max_store_time()),
            TimeUtil::TimestampToMilliseconds(offsets.min_store_time()));

  sv1::GetStatsResponse stats;
  ASSERT_TRUE(stub_->GetStats(Context().get(), {}, &stats).ok());
  EXPECT_EQ(stats.appended_records(), 500);
  EXPECT_GE(stats.segments(), 1);
  EXPECT_GT(stats.disk_bytes(), 0);
  EXPECT_GT(stats.commit_log_max_offset(), 500 * 100);
}

TEST_F(StoreServiceTest, ReadsSeveralQueuesInOneCallWithinOneBudget) {
  Start();
  PutTopic("Orders", 2);
  AppendDataSet();
  auto read = [](sv1::ReadQueuesRequest* request, int32_t queue, int64_t offset, int max,
                 std::vector<std::string> tags = {}) {
    sv1::ReadRequest* r = request->add_reads();
    r->set_topic("Orders");
    r->set_queue_id(queue);
    r->set_offset(offset);
    r->set_max_messages(max);
    for (const std::string& t : tags) r->add_tags(t);
  };
  auto call = [this](const sv1::ReadQueuesRequest& request, sv1::ReadQueuesResponse* response) {
    return stub_->ReadQueues(Context().get(), request, response);
  };

  // Each read keeps its own limit; the call's budget narrows the later ones.
  sv1::ReadQueuesRequest both;
  read(&both, 0, 10, 200);
  read(&both, 1, 0, 200);
  both.set_max_messages(300);
  sv1::ReadQueuesResponse answer;
  ASSERT_TRUE(call(both, &answer).ok());
  ASSERT_EQ(answer.results_size(), 2);
  EXPECT_EQ(answer.results(0).code(), 0);
  EXPECT_EQ(answer.results(0).response().records_size(), 200);
  EXPECT_EQ(answer.results(0).response().records(0).queue_offset(), 10);
  EXPECT_EQ(answer.results(0).response().next_offset(), 210);
  EXPECT_EQ(answer.results(0).response().max_offset(), 250);
  EXPECT_EQ(answer.results(1).response().records_size(), 100);
  EXPECT_EQ(answer.results(1).response().records(0).queue_id(), 1);
  EXPECT_EQ(answer.results(1).response().next_offset(), 100);
  EXPECT_EQ(answer.results(1).response().records(99).body(), ReadAll("Orders", 1)[99].body());

  // A spent budget leaves the later queues unread (no result for them).
  both.set_max_messages(150);
  answer.Clear();
  ASSERT_TRUE(call(both, &answer).ok());
  ASSERT_EQ(answer.results_size(), 1);
  EXPECT_EQ(answer.results(0).response().records_size(), 150);
  both.set_max_messages(0);
  both.set_max_bytes(1);  // one record at least, then the bytes are spent
  answer.Clear();
  ASSERT_TRUE(call(both, &answer).ok());
  ASSERT_EQ(answer.results_size(), 1);
  EXPECT_EQ(answer.results(0).response().records_size(), 1);

  // A read that fails says why in its own result; the others go on. Tag
  // filters apply per read.
  sv1::ReadQueuesRequest mixed;
  read(&mixed, 7, 0, 10);
  read(&mixed, 0, 0, 7, {"TagA"});
  mixed.set_max_messages(100);
  answer.Clear();
  ASSERT_TRUE(call(mixed, &answer).ok());
  ASSERT_EQ(answer.results_size(), 2);
  EXPECT_NE(answer.results(0).code(), 0);
  EXPECT_THAT(answer.results(0).error(), HasSubstr("7"));
  EXPECT_FALSE(answer.results(0).has_response());
  ASSERT_EQ(answer.results(1).code(), 0) << answer.results(1).error();
  ASSERT_EQ(answer.results(1).response().records_size(), 7);
  for (const auto& r : answer.results(1).response().records()) EXPECT_EQ(r.tag(), "TagA");

  // Bad input names the field and its limits.
  sv1::ReadQueuesRequest none;
  grpc::Status s = call(none, &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("reads has 0 entries (allowed: 1..256)"));
  sv1::ReadQueuesRequest many;
  for (int i = 0; i < 257; ++i) read(&many, 0, 0, 1);
  s = call(many, &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("reads has 257 entries"));
}

TEST_F(StoreServiceTest, CommitsSeveralOffsetsInOneCall) {
  Start();
  PutTopic("Orders", 2);
  AppendDataSet();
  sv1::CommitOffsetsRequest request;
  for (int32_t queue = 0; queue < 2; ++queue) {
    sv1::CommitOffsetRequest* o = request.add_offsets();
    o->set_group("G");
    o->set_topic("Orders");
    o->set_queue_id(queue);
    o->set_offset(5 + queue);
  }
  sv1::CommitOffsetsResponse committed;
  grpc::Status s = stub_->CommitOffsets(Context().get(), request, &committed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int32_t queue = 0; queue < 2; ++queue) {
    sv1::FetchOffsetRequest fetch;
    fetch.set_group("G");
    fetch.set_topic("Orders");
    fetch.set_queue_id(queue);
    sv1::FetchOffsetResponse fetched;
    s = stub_->FetchOffset(Context().get(), fetch, &fetched);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(fetched.offset(), 5 + queue);
  }
  // The first offset that fails ends the call with its error.
  request.mutable_offsets(1)->set_offset(251);
  s = stub_->CommitOffsets(Context().get(), request, &committed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(s.error_message(), HasSubstr("offset 251"));
  s = stub_->CommitOffsets(Context().get(), sv1::CommitOffsetsRequest(), &committed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("offsets has 0 entries (allowed: 1..1024)"));
}

TEST_F(StoreServiceTest, BadInputGetsClearErrorsAndStoresNothing) {
  Start();
  PutTopic("Orders", 2);

  // A bad batch between good ones fails alone; the others are unaffected.
  std::vector<sv1::AppendRequest> requests(5);
  for (int b = 0; b < 5; ++b) {
    requests[b].set_request_id(b + 1);
    *requests[b].add_records() = MakeRecord("Orders", 0, b);
    *requests[b].add_records() = MakeRecord("Orders", 0, b + 100);
  }
  requests[1].mutable_records(1)->set_topic("NoSuchTopic");
  requests[2].mutable_records(0)->set_queue_id(9);
  // --max_body_size=64KiB plus 32 KiB for the rest of a message.
  requests[3].mutable_records(1)->set_body(std::string((96 << 10) + 1, 'x'));
  auto responses = AppendPipelined(stub_.get(), requests);
  ASSERT_EQ(responses.size(), 5u);
  for (int b = 0; b < 5; ++b) EXPECT_EQ(responses[b].request_id(), static_cast<uint64_t>(b + 1));
  EXPECT_EQ(responses[0].code(), 0);
  EXPECT_EQ(responses[1].code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(responses[1].message(), HasSubstr("batch[1].topic \"NoSuchTopic\" does not exist"));
  EXPECT_EQ(responses[1].results_size(), 0);
  EXPECT_EQ(responses[2].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(responses[2].message(), HasSubstr("queue 9"));
  EXPECT_THAT(responses[2].message(), HasSubstr("[0, 2)"));
  EXPECT_EQ(responses[3].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(responses[3].message(), HasSubstr("batch[1].body"));
  EXPECT_THAT(responses[3].message(), HasSubstr("98305 bytes (max 98304)"));
  ASSERT_EQ(responses[4].code(), 0);
  // Failed batches appended nothing: queue offsets stay contiguous.
  EXPECT_EQ(responses[0].results(0).queue_offset(), 0);
  EXPECT_EQ(responses[4].results(0).queue_offset(), 2);
  WaitIndexed("Orders", 0, 4);
  EXPECT_EQ(ReadAll("Orders", 0).size(), 4u);

  // Reads outside [min, max] are OUT_OF_RANGE; at max they are empty.
  sv1::ReadResponse response;
  grpc::Status s = Read("Orders", 0, 5, 10, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(s.error_message(), HasSubstr("[0, 4)"));
  EXPECT_EQ(Read("Orders", 0, -1, 10, &response).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  response.Clear();
  ASSERT_TRUE(Read("Orders", 0, 4, 10, &response).ok());
  EXPECT_EQ(response.records_size(), 0);
  EXPECT_EQ(response.next_offset(), 4);
  EXPECT_EQ(response.max_offset(), 4);
  s = Read("Missing", 0, 0, 10, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("\"Missing\""));
  EXPECT_EQ(Read("Orders", 0, 0, 5000, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  sv1::CommitOffsetRequest commit;
  commit.set_group("GID_A");
  commit.set_topic("Orders");
  commit.set_queue_id(0);
  commit.set_offset(99);
  sv1::CommitOffsetResponse committed;
  s = stub_->CommitOffset(Context().get(), commit, &committed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(s.error_message(), HasSubstr("[0, 4]"));

  sv1::PutTopicRequest bad_topic;
  bad_topic.mutable_topic()->set_name("bad topic");
  bad_topic.mutable_topic()->set_queue_count(1);
  sv1::PutTopicResponse put;
  s = stub_->PutTopic(Context().get(), bad_topic, &put);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("bad topic"));
  bad_topic.mutable_topic()->set_name("Zero");
  bad_topic.mutable_topic()->set_queue_count(0);
  EXPECT_EQ(stub_->PutTopic(Context().get(), bad_topic, &put).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(StoreServiceTest, ServesTcpAndExportsMetrics) {
  Start(/*tcp=*/true);
  EXPECT_THAT(store_->address(), HasSubstr("127.0.0.1:"));
  PutTopic("Orders", 2);
  AppendDataSet();
  ExpectDataSet();
  std::string metrics;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        auto body = HttpGet(store_->metrics_address(), "/metrics");
        metrics = body.value_or("");
        return metrics.find("apogee_store_segments 1") != std::string::npos;
      },
      absl::Seconds(10)))
      << metrics;
  EXPECT_THAT(metrics, HasSubstr("apogee_store_messages_in_total 500"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_append_batches_total 50"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_append_latency_seconds_count"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_flush_latency_seconds_count"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_dispatch_lag_bytes"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_disk_bytes"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_recovery_seconds"));
  // Retention's carry of delayed messages (message-types.md §2.4).
  EXPECT_THAT(metrics, HasSubstr("apogee_store_timers_carried_total 0"));
  EXPECT_THAT(metrics, HasSubstr("apogee_store_retention_pinned_segments 0"));

  ASSERT_EQ(store_->Stop(SIGTERM).value_or(-1), 0) << store_->LogTail();
  ASSERT_TRUE(store_->Restart(/*same_port=*/true).ok()) << store_->LogTail();
  Connect();
  ExpectDataSet();
}

TEST_F(StoreServiceTest, RemovesStaleSocketButNeverALiveOne) {
  Start();
  PutTopic("Orders", 1);
  // SIGKILL leaves the socket file behind; the next start removes it.
  Restart();
  sv1::ListTopicsResponse topics;
  ASSERT_TRUE(stub_->ListTopics(Context().get(), {}, &topics).ok());
  EXPECT_EQ(topics.topics_size(), 1);
  EXPECT_THAT(store_->LogTail(), HasSubstr("event=stale_socket_removed"));

  // A second store on the live socket refuses to start.
  TempDir other;
  auto second = ServiceProcess::Start(
      "second", APOGEE_STORE_BIN,
      {absl::StrCat("--data_dir=", other.path(), "/data"),
       "--metrics_listen=", absl::StrCat("--listen=unix:", dir_.path(), "/store.sock")},
      other.path(), absl::Seconds(20));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("another process is serving on unix:"));
  ASSERT_TRUE(stub_->ListTopics(Context().get(), {}, &topics).ok()) << "first store still serves";
}

TEST_F(StoreServiceTest, SigtermAnswersReadBatchesThenEndsOpenStreams) {
  // A grace longer than Stop's 20 s timeout: the test fails unless the
  // store drains and exits on its own, although the client keeps its
  // stream and connection open.
  Start(/*tcp=*/false, {"--shutdown_grace=60s"});
  PutTopic("Orders", 1);
  grpc::ClientContext context;
  auto stream = stub_->Append(&context);
  for (int b = 0; b < 20; ++b) {
    sv1::AppendRequest request;
    request.set_request_id(b);
    *request.add_records() = MakeRecord("Orders", 0, b);
    ASSERT_TRUE(stream->Write(request));
  }
  sv1::AppendResponse response;
  for (int b = 0; b < 20; ++b) {
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.request_id(), static_cast<uint64_t>(b));
    EXPECT_EQ(response.code(), 0) << response.message();
  }
  // Read the stream's end while the store is still exiting (a dead
  // process's socket may lose what the client has not read yet).
  ASSERT_EQ(kill(store_->pid(), SIGTERM), 0);
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  auto stopped = store_->Stop(SIGTERM);  // already stopping; waits for the exit
  ASSERT_TRUE(stopped.ok()) << stopped.status() << store_->LogTail();
  EXPECT_EQ(*stopped, 0);
  EXPECT_THAT(store_->LogTail(), HasSubstr("event=drained unfinished_calls=0"));
}

TEST_F(StoreServiceTest, RejectsBadFlagsClearly) {
  TempDir other;
  auto missing = ServiceProcess::Start("nodir", APOGEE_STORE_BIN, {"--metrics_listen="},
                                       other.path(), absl::Seconds(20));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("--data_dir is required"));

  const std::string file = absl::StrCat(other.path(), "/plain-file");
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  auto unwritable = ServiceProcess::Start(
      "badir", APOGEE_STORE_BIN, {absl::StrCat("--data_dir=", file, "/data"), "--metrics_listen="},
      other.path(), absl::Seconds(20));
  ASSERT_FALSE(unwritable.ok());
  EXPECT_THAT(unwritable.status().message(), HasSubstr("--data_dir="));

  auto small = ServiceProcess::Start(
      "small", APOGEE_STORE_BIN,
      {absl::StrCat("--data_dir=", other.path(), "/d"), "--metrics_listen=", "--segment_size=4KiB"},
      other.path(), absl::Seconds(20));
  ASSERT_FALSE(small.ok());
  EXPECT_THAT(small.status().message(), HasSubstr("--segment_size=4KiB is out of range"));
}

}  // namespace
}  // namespace apogee
