// Store-to-store replication with real processes: two apogee-store
// processes on temp dirs, roles set directly with SetRole (no broker), the
// data driven through the Store gRPC API (docs/design/replication.md).
#include <signal.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
using ::apogee::testing::PollUntil;
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) {
  return testing::DeadlineContext(timeout);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

// One apogee-store process and a stub on its Store service.
struct Node {
  std::string name;
  std::unique_ptr<ServiceProcess> process;
  std::unique_ptr<sv1::Store::Stub> stub;

  // The HA address from the latest "event=started" line of the log.
  std::string HaAddress() const {
    std::string found;
    for (absl::string_view line : absl::StrSplit(ReadText(process->log_path()), '\n')) {
      if (!absl::StartsWith(line, "event=started ")) continue;
      for (absl::string_view field : absl::StrSplit(line, ' ')) {
        if (absl::ConsumePrefix(&field, "ha_listen=")) found = std::string(field);
      }
    }
    return found;
  }
  std::string Log() const { return ReadText(process->log_path()); }

  void Connect() {
    stub = sv1::Store::NewStub(
        grpc::CreateChannel(process->address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status SetRole(sv1::Role role, int64_t epoch, const std::string& master = "",
                       sv1::ReplicationMode mode = sv1::REPLICATION_ASYNC,
                       absl::Duration timeout = absl::Seconds(3)) {
    sv1::SetRoleRequest request;
    request.set_role(role);
    request.set_epoch(epoch);
    request.set_master_address(master);
    request.set_replica_id(name);
    request.set_mode(mode);
    request.set_min_insync_replicas(1);
    *request.mutable_replication_timeout() =
        TimeUtil::MillisecondsToDuration(absl::ToInt64Milliseconds(timeout));
    sv1::SetRoleResponse response;
    return stub->SetRole(Context().get(), request, &response);
  }

  sv1::GetReplicationStatusResponse Status() {
    sv1::GetReplicationStatusResponse response;
    grpc::Status s = stub->GetReplicationStatus(Context().get(), {}, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  sv1::GetStatsResponse Stats() {
    sv1::GetStatsResponse response;
    grpc::Status s = stub->GetStats(Context().get(), {}, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  grpc::Status PutTopic(const std::string& topic, int queues) {
    sv1::PutTopicRequest request;
    request.mutable_topic()->set_name(topic);
    request.mutable_topic()->set_queue_count(queues);
    sv1::PutTopicResponse response;
    return stub->PutTopic(Context().get(), request, &response);
  }

  // Appends `count` records in one batch; returns the answer.
  sv1::AppendResponse Append(const std::string& topic, int count, int first,
                             absl::Duration timeout = absl::Seconds(20)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    auto stream = stub->Append(&context);
    sv1::AppendRequest request;
    request.set_request_id(static_cast<uint64_t>(first));
    for (int i = first; i < first + count; ++i) {
      sv1::AppendRecord* r = request.add_records();
      r->set_topic(topic);
      r->set_queue_id(i % 2);
      r->set_message_id(absl::StrCat("id-", i));
      r->add_keys(absl::StrCat("key-", i));
      r->set_body(absl::StrCat("body-", i, "-", std::string(static_cast<size_t>(i % 97), 'x')));
    }
    sv1::AppendResponse response;
    EXPECT_TRUE(stream->Write(request));
    stream->WritesDone();
    EXPECT_TRUE(stream->Read(&response));
    EXPECT_TRUE(stream->Finish().ok());
    return response;
  }

  // Every record of a queue, as stored.
  std::vector<std::string> ReadQueue(const std::string& topic, int queue) {
    std::vector<std::string> out;
    int64_t offset = 0;
    for (int page = 0; page < 1000; ++page) {
      sv1::ReadRequest request;
      request.set_topic(topic);
      request.set_queue_id(queue);
      request.set_offset(offset);
      request.set_max_messages(200);
      sv1::ReadResponse response;
      grpc::Status s = stub->Read(Context().get(), request, &response);
      EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
      if (!s.ok() || response.records_size() == 0) break;
      for (const auto& r : response.records()) {
        out.push_back(absl::StrCat(r.queue_offset(), "@", r.commit_log_offset(), ":",
                                   r.message_id(), ":", r.body()));
      }
      offset = response.next_offset();
    }
    return out;
  }
};

class StoreReplicationTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> StartNode(const std::string& name, std::vector<std::string> extra = {}) {
    auto node = std::make_unique<Node>();
    node->name = name;
    std::vector<std::string> args = {absl::StrCat("--data_dir=", dir_.path(), "/", name),
                                     "--metrics_listen=127.0.0.1:0",
                                     "--ha_listen=127.0.0.1:0",
                                     "--segment_size=256KiB",
                                     "--max_body_size=64KiB",
                                     "--flush_interval=50ms",
                                     "--replica_lag_time=2s"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = ServiceProcess::Start(name, APOGEE_STORE_BIN, args, dir_.path());
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return nullptr;
    node->process = std::move(process).value();
    node->Connect();
    return node;
  }

  // Batches [from, to) of `per_batch` records each, every one acknowledged.
  void AppendBatches(Node* node, int from, int to, int per_batch = 50) {
    for (int i = from; i < to; ++i) {
      const sv1::AppendResponse response = node->Append("T", per_batch, i * per_batch);
      ASSERT_EQ(response.code(), 0) << node->name << ": " << response.message();
    }
  }

  // A (master of epoch 1, topic T with `batches` batches) followed by B.
  void StartPair(int batches, int per_batch = 50) {
    a_ = StartNode("a");
    b_ = StartNode("b");
    ASSERT_TRUE(a_ && b_);
    ASSERT_TRUE(a_->SetRole(sv1::MASTER, 1).ok());
    ASSERT_TRUE(a_->PutTopic("T", 2).ok());
    AppendBatches(a_.get(), 0, batches, per_batch);
    ASSERT_TRUE(b_->SetRole(sv1::SLAVE, 1, a_->HaAddress()).ok());
    WaitCaughtUp(a_.get(), b_.get());
  }

  void Restart(Node* node) {
    ASSERT_TRUE(node->process->Restart(/*same_port=*/false).ok()) << node->process->LogTail();
    node->Connect();
  }

  // Waits until `slave` holds exactly the master's log and indexed it.
  void WaitCaughtUp(Node* master, Node* slave) {
    int64_t want = 0;
    int64_t have = 0;
    const bool caught_up = PollUntil(
        [&] {
          want = master->Stats().commit_log_max_offset();
          const sv1::GetStatsResponse stats = slave->Stats();
          have = stats.commit_log_max_offset();
          return have == want && stats.commit_log_dispatched_offset() == want;
        },
        absl::Seconds(15));
    ASSERT_TRUE(caught_up) << slave->name << " holds " << have << " of " << want << "\n"
                           << slave->process->LogTail();
  }

  void ExpectSameQueues(Node* a, Node* b, const std::string& topic) {
    for (int queue = 0; queue < 2; ++queue) {
      const std::vector<std::string> left = a->ReadQueue(topic, queue);
      const std::vector<std::string> right = b->ReadQueue(topic, queue);
      EXPECT_FALSE(left.empty());
      EXPECT_TRUE(left == right) << topic << "/" << queue << ": " << a->name << " has "
                                 << left.size() << " records, " << b->name << " " << right.size();
    }
  }

  TempDir dir_;
  std::unique_ptr<Node> a_;
  std::unique_ptr<Node> b_;
};

TEST_F(StoreReplicationTest, SlaveCatchesUpServesReadsAndRefusesWrites) {
  ASSERT_NO_FATAL_FAILURE(StartPair(10));
  Node* a = a_.get();
  Node* b = b_.get();
  // Metadata changed while B follows travels in snapshots: a group and a
  // committed offset.
  sv1::PutGroupRequest group;
  group.mutable_group()->set_name("G");
  group.mutable_group()->set_config("cfg-1");
  sv1::PutGroupResponse put_group;
  ASSERT_TRUE(a->stub->PutGroup(Context().get(), group, &put_group).ok());
  sv1::CommitOffsetRequest commit;
  commit.set_group("G");
  commit.set_topic("T");
  commit.set_queue_id(1);
  commit.set_offset(42);
  sv1::CommitOffsetResponse committed;
  ASSERT_TRUE(a->stub->CommitOffset(Context().get(), commit, &committed).ok());
  // More data while it follows: streamed as the log grows.
  AppendBatches(a, 10, 20);
  WaitCaughtUp(a, b);
  ExpectSameQueues(a, b, "T");

  sv1::FetchOffsetRequest fetch;
  fetch.set_group("G");
  fetch.set_topic("T");
  fetch.set_queue_id(1);
  sv1::FetchOffsetResponse fetched;
  ASSERT_TRUE(PollUntil([&] { return b->stub->FetchOffset(Context().get(), fetch, &fetched).ok(); },
                        absl::Seconds(5)));
  EXPECT_EQ(fetched.offset(), 42);
  sv1::ListTopicsResponse topics;
  ASSERT_TRUE(b->stub->ListTopics(Context().get(), {}, &topics).ok());
  ASSERT_EQ(topics.topics_size(), 1);
  EXPECT_EQ(topics.topics(0).name(), "T");
  EXPECT_EQ(topics.topics(0).queue_count(), 2);
  sv1::ListGroupsResponse groups;
  ASSERT_TRUE(b->stub->ListGroups(Context().get(), {}, &groups).ok());
  ASSERT_EQ(groups.groups_size(), 1);
  EXPECT_EQ(groups.groups(0).config(), "cfg-1");

  // The master sees one in-sync follower that acknowledged everything.
  ASSERT_TRUE(PollUntil(
      [&] {
        const auto status = a->Status();
        return status.followers_size() == 1 && status.followers(0).in_sync() &&
               status.followers(0).acked_offset() == status.log_end();
      },
      absl::Seconds(5)));
  const auto slave_status = b->Status();
  EXPECT_EQ(slave_status.role(), sv1::SLAVE);
  EXPECT_TRUE(slave_status.connected());
  EXPECT_EQ(slave_status.bytes_received(), a->Stats().commit_log_max_offset());
  // Bytes replicated are counted on both sides.
  auto master_metrics = ::apogee::testing::HttpGet(a->process->metrics_address(), "/metrics");
  ASSERT_TRUE(master_metrics.ok()) << master_metrics.status();
  EXPECT_THAT(*master_metrics, HasSubstr(absl::StrCat("apogee_store_replication_sent_bytes_total ",
                                                      a->Stats().commit_log_max_offset())));
  auto slave_metrics = ::apogee::testing::HttpGet(b->process->metrics_address(), "/metrics");
  ASSERT_TRUE(slave_metrics.ok()) << slave_metrics.status();
  EXPECT_THAT(*slave_metrics, HasSubstr("apogee_store_replication_received_bytes_total "));

  // A slave refuses writes, naming its master and epoch.
  const sv1::AppendResponse refused = b->Append("T", 1, 5000);
  EXPECT_EQ(refused.code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_THAT(refused.message(), HasSubstr(a->HaAddress()));
  EXPECT_EQ(b->PutTopic("U", 1).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Epoch 0 keeps the current epoch; a lower one is refused.
  EXPECT_TRUE(a->SetRole(sv1::MASTER, 0).ok());
  EXPECT_EQ(a->Status().epoch(), 1);
  EXPECT_TRUE(b->SetRole(sv1::MASTER, 2).ok());
  EXPECT_EQ(b->SetRole(sv1::MASTER, 1).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(StoreReplicationTest, RestartedSlaveResumesWithoutAFullCopy) {
  ASSERT_NO_FATAL_FAILURE(StartPair(20));
  Node* a = a_.get();
  Node* b = b_.get();
  const int64_t before = a->Stats().commit_log_max_offset();

  ASSERT_TRUE(b->process->Stop(SIGTERM).ok());
  AppendBatches(a, 20, 30);
  const int64_t after = a->Stats().commit_log_max_offset();
  // The restarted store resumes its role (persisted) and follows from its
  // own log end: it receives only what it lacks.
  Restart(b);
  WaitCaughtUp(a, b);
  const auto status = b->Status();
  EXPECT_EQ(status.role(), sv1::SLAVE);
  EXPECT_EQ(status.epoch(), 1);
  EXPECT_EQ(status.bytes_received(), after - before);
  EXPECT_THAT(b->Log(), HasSubstr(absl::StrCat("event=following master=", a->HaAddress(),
                                               " epoch=1 from=", before)));
  ExpectSameQueues(a, b, "T");
}

TEST_F(StoreReplicationTest, OldMasterTruncatesItsDivergentTail) {
  ASSERT_NO_FATAL_FAILURE(StartPair(10, 40));
  Node* a = a_.get();
  Node* b = b_.get();
  const int64_t common = a->Stats().commit_log_max_offset();

  // B stops; A takes writes nobody else holds (its divergent tail).
  ASSERT_TRUE(b->process->Stop(SIGTERM).ok());
  AppendBatches(a, 10, 15, 40);
  const int64_t divergent = a->Stats().commit_log_max_offset() - common;
  ASSERT_GT(divergent, 0);
  ASSERT_TRUE(a->process->Stop(SIGTERM).ok());

  // B becomes the master of epoch 2 and takes other writes.
  Restart(b);
  ASSERT_TRUE(b->SetRole(sv1::MASTER, 2).ok());
  AppendBatches(b, 100, 108, 40);

  // A comes back as B's slave: it cuts its tail back to the common prefix.
  Restart(a);
  ASSERT_TRUE(a->SetRole(sv1::SLAVE, 2, b->HaAddress()).ok());
  WaitCaughtUp(b, a);
  EXPECT_EQ(a->Status().truncated_bytes(), divergent);
  EXPECT_THAT(a->Log(), HasSubstr(absl::StrCat("from=", common + divergent, " to=", common,
                                               " dropped_bytes=", divergent)));
  ExpectSameQueues(b, a, "T");
  // The old master's records past the common prefix are gone.
  for (const std::string& record : a->ReadQueue("T", 0)) {
    EXPECT_THAT(record, ::testing::Not(HasSubstr(":id-400:")));
  }
}

TEST_F(StoreReplicationTest, SyncModeAbortsWithoutAnInSyncFollowerAndRecovers) {
  auto a = StartNode("a");
  // The follower acknowledges only what it synced (--flush=sync).
  auto b = StartNode("b", {"--flush=sync"});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->SetRole(sv1::MASTER, 1, "", sv1::REPLICATION_SYNC, absl::Seconds(1)).ok());
  ASSERT_TRUE(a->PutTopic("T", 2).ok());
  ASSERT_TRUE(b->SetRole(sv1::SLAVE, 1, a->HaAddress()).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        const auto status = a->Status();
        return status.followers_size() == 1 && status.followers(0).in_sync();
      },
      absl::Seconds(10)));
  sv1::AppendResponse ok = a->Append("T", 10, 0);
  EXPECT_EQ(ok.code(), 0) << ok.message();

  ASSERT_TRUE(b->process->Stop(SIGKILL).ok());
  const absl::Time start = absl::Now();
  const sv1::AppendResponse aborted = a->Append("T", 10, 10);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(aborted.code(), static_cast<int>(grpc::StatusCode::ABORTED)) << aborted.message();
  EXPECT_EQ(aborted.results_size(), 10);  // stored locally: the results are filled in
  EXPECT_THAT(aborted.message(), HasSubstr("min_insync_replicas=1"));
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(4));

  // The follower comes back, catches up and rejoins the in-sync set.
  Restart(b.get());
  WaitCaughtUp(a.get(), b.get());
  ASSERT_TRUE(PollUntil(
      [&] {
        const auto status = a->Status();
        return status.followers_size() == 1 && status.followers(0).in_sync();
      },
      absl::Seconds(10)));
  const sv1::AppendResponse again = a->Append("T", 10, 20);
  EXPECT_EQ(again.code(), 0) << again.message();
}

TEST_F(StoreReplicationTest, StalledFollowerLeavesAndRejoinsTheInSyncSet) {
  ASSERT_NO_FATAL_FAILURE(StartPair(2));
  Node* a = a_.get();
  Node* b = b_.get();
  ASSERT_TRUE(PollUntil(
      [&] {
        const auto status = a->Status();
        return status.followers_size() == 1 && status.followers(0).in_sync();
      },
      absl::Seconds(5)));
  // Stopped, not disconnected: the stream stays up but nothing is acked.
  ASSERT_EQ(::kill(b->process->pid(), SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{b->process->pid()};
  AppendBatches(a, 2, 4);
  sv1::FollowerStatus follower;
  const bool left = PollUntil(
      [&] {
        const auto status = a->Status();
        if (status.followers_size() != 1) return false;
        follower = status.followers(0);
        return !follower.in_sync();
      },
      absl::Seconds(10));
  ASSERT_TRUE(left) << "a stalled follower must leave the in-sync set after replica_lag_time";
  EXPECT_GT(follower.lag_bytes(), 0);
  EXPECT_GT(TimeUtil::DurationToMilliseconds(follower.lag_time()), 0);
  // The metrics show it too (refreshed every 2 s).
  EXPECT_TRUE(PollUntil(
      [&] {
        auto metrics = ::apogee::testing::HttpGet(a->process->metrics_address(), "/metrics");
        return metrics.ok() &&
               absl::StrContains(*metrics,
                                 "apogee_store_replication_follower_in_sync{replica=\"b\"} 0");
      },
      absl::Seconds(5)));
  // Resumed, it catches up and rejoins.
  ASSERT_EQ(::kill(b->process->pid(), SIGCONT), 0);
  WaitCaughtUp(a, b);
  EXPECT_TRUE(PollUntil(
      [&] {
        const auto status = a->Status();
        return status.followers_size() == 1 && status.followers(0).in_sync() &&
               status.followers(0).lag_bytes() == 0;
      },
      absl::Seconds(5)));
}

TEST_F(StoreReplicationTest, DeposedMasterIsRefused) {
  auto a = StartNode("a");
  auto b = StartNode("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->SetRole(sv1::MASTER, 1).ok());
  // B knows epoch 3: A (epoch 1) refuses to lead it.
  ASSERT_TRUE(b->SetRole(sv1::SLAVE, 3, a->HaAddress()).ok());
  ASSERT_TRUE(PollUntil([&] { return absl::StrContains(b->Log(), "deposed"); }, absl::Seconds(10)))
      << b->process->LogTail();
  EXPECT_FALSE(b->Status().connected());
  EXPECT_EQ(a->Status().followers_size(), 0);

  // A promoted past it is followed again, and B adopts the later epoch:
  // it can no longer be made master below it.
  ASSERT_TRUE(a->SetRole(sv1::MASTER, 5).ok());
  ASSERT_TRUE(PollUntil(
      [&] {
        const auto status = b->Status();
        return status.connected() && status.epoch() == 5;
      },
      absl::Seconds(10)))
      << b->process->LogTail();
  EXPECT_EQ(b->SetRole(sv1::MASTER, 4).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace apogee
