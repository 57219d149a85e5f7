// apogee-store on a disk that fills up, then SIGTERM: the store must exit
// cleanly (RocksDB 7.8 used to abort on an assertion when the shutdown
// synced a WAL whose append had failed) and, restarted with space back,
// serve every acknowledged record. The disk is a small tmpfs the test
// mounts (root only; skipped with the reason otherwise). The commit log and
// the RocksDB index share it, as in production.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apogee/store/v1/store.grpc.pb.h"
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
using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;

constexpr char kTopic[] = "Full";
constexpr int kQueues = 4;
constexpr int kResourceExhausted = 8;  // google.rpc.Code

std::unique_ptr<grpc::ClientContext> Context() {
  return testing::DeadlineContext(absl::Seconds(10));
}

struct Acked {
  std::string id;
  std::string body;
};

class StoreDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "mounting a tmpfs needs root (running as uid " << geteuid() << ")";
    }
    disk_ = dir_.path() + "/disk";
    ASSERT_EQ(mkdir(disk_.c_str(), 0755), 0) << std::strerror(errno);
    if (mount("tmpfs", disk_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755") != 0) {
      GTEST_SKIP() << "cannot mount a 4 MiB tmpfs at " << disk_ << ": " << std::strerror(errno);
    }
    mounted_ = true;
    auto process = ServiceProcess::Start(
        "store", APOGEE_STORE_BIN,
        {absl::StrCat("--data_dir=", disk_, "/data"),
         absl::StrCat("--listen=unix:", dir_.path(), "/store.sock"),
         "--metrics_listen=", "--flush=sync", "--segment_size=256KiB", "--max_body_size=16KiB",
         // Retention must not free the disk by deleting acknowledged data.
         "--disk_watermark=1"},
        dir_.path());
    ASSERT_TRUE(process.ok()) << process.status();
    store_ = std::move(process).value();
    Connect();
    sv1::PutTopicRequest put;
    put.mutable_topic()->set_name(kTopic);
    put.mutable_topic()->set_queue_count(kQueues);
    sv1::PutTopicResponse response;
    ASSERT_TRUE(stub_->PutTopic(Context().get(), put, &response).ok());
  }

  void TearDown() override {
    store_.reset();  // SIGKILLs a store still running
    if (mounted_) umount2(disk_.c_str(), MNT_DETACH);
  }

  void Connect() {
    stub_ = sv1::Store::NewStub(
        grpc::CreateChannel(store_->address(), grpc::InsecureChannelCredentials()));
  }

  // Pipelines batches until the store has refused `refusals` of them as
  // RESOURCE_EXHAUSTED (the disk is full); records what it acknowledged.
  void FillDisk(int refusals) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto stream = stub_->Append(&context);
    absl::Mutex mu;
    std::map<uint64_t, sv1::AppendRequest> pending;
    int refused = 0;
    int other_errors = 0;
    bool closed = false;
    std::thread reader([&] {
      sv1::AppendResponse response;
      while (stream->Read(&response)) {
        absl::MutexLock lock(&mu);
        auto it = pending.find(response.request_id());
        ASSERT_NE(it, pending.end()) << "answer for unknown batch " << response.request_id();
        if (response.code() == 0) {
          ASSERT_EQ(response.results_size(), it->second.records_size());
          for (int i = 0; i < it->second.records_size(); ++i) {
            const sv1::AppendRecord& r = it->second.records(i);
            auto [at, inserted] = acked_[r.queue_id()].emplace(response.results(i).queue_offset(),
                                                               Acked{r.message_id(), r.body()});
            ASSERT_TRUE(inserted) << "offset acknowledged twice in queue " << r.queue_id();
          }
        } else if (response.code() == kResourceExhausted) {
          ++refused;
        } else {
          ++other_errors;
          last_error_ = response.message();
        }
        pending.erase(it);
      }
      absl::MutexLock lock(&mu);
      closed = true;
    });
    uint64_t id = 0;
    // 4 MiB of disk; bounded well past it.
    for (int b = 0; b < 4000; ++b) {
      sv1::AppendRequest request;
      request.set_request_id(++id);
      for (int i = 0; i < 3; ++i) {
        sv1::AppendRecord* r = request.add_records();
        const std::string message_id = absl::StrCat("full-", id, "-", i);
        r->set_topic(kTopic);
        r->set_queue_id(static_cast<int32_t>((id + i) % kQueues));
        r->set_message_id(message_id);
        r->add_keys(absl::StrCat("key-", id));
        r->set_body(absl::StrCat(message_id, ":", std::string(1500 + 700 * i, 'x')));
      }
      {
        absl::MutexLock lock(&mu);
        auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
          return closed || refused >= refusals || pending.size() < 8;
        };
        ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&room), absl::Seconds(20)));
        if (closed || refused >= refusals) break;
        pending[id] = request;
      }
      if (!stream->Write(request)) break;
    }
    {
      absl::MutexLock lock(&mu);
      auto answered = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return closed || pending.empty(); };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(20)));
      EXPECT_GE(refused, refusals) << "the disk never filled up";
      EXPECT_EQ(other_errors, 0) << last_error_;
    }
    stream->WritesDone();
    reader.join();
    stream->Finish().IgnoreError();
  }

  // Another tenant of the disk writes up to `max_bytes` (or until it is
  // full) into `name`.
  std::string WriteFiller(const std::string& name, int64_t max_bytes) {
    const std::string path = disk_ + "/" + name;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
    const std::string block(4096, 'f');
    for (int64_t written = 0; fd >= 0 && written < max_bytes; written += 4096) {
      if (write(fd, block.data(), block.size()) < 0) break;  // ENOSPC
    }
    if (fd >= 0) close(fd);
    return path;
  }

  // Every acknowledged record, in its queue at its offset.
  void VerifyAcknowledged() {
    int64_t total = 0;
    for (int32_t queue = 0; queue < kQueues; ++queue) {
      const auto& expected = acked_[queue];
      int64_t offset = 0;
      for (int page = 0; page < 1000 && offset <= expected.rbegin()->first; ++page) {
        sv1::ReadRequest read;
        read.set_topic(kTopic);
        read.set_queue_id(queue);
        read.set_offset(offset);
        read.set_max_messages(256);
        read.set_max_bytes(8 << 20);
        sv1::ReadResponse response;
        const grpc::Status s = stub_->Read(Context().get(), read, &response);
        ASSERT_TRUE(s.ok()) << s.error_message();
        ASSERT_GT(response.records_size(), 0)
            << "queue " << queue << " ends at " << offset << "; acknowledged up to "
            << expected.rbegin()->first;
        for (const sv1::StoredRecord& r : response.records()) {
          auto it = expected.find(r.queue_offset());
          ASSERT_NE(it, expected.end()) << "queue " << queue << " offset " << r.queue_offset()
                                        << " holds an unacknowledged record";
          ASSERT_EQ(r.message_id(), it->second.id);
          ASSERT_EQ(r.body(), it->second.body);
          ++total;
        }
        offset = response.next_offset();
      }
    }
    int64_t acked = 0;
    for (const auto& [queue, records] : acked_) acked += static_cast<int64_t>(records.size());
    EXPECT_EQ(total, acked);
  }

  TempDir dir_;
  std::string disk_;
  bool mounted_ = false;
  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<sv1::Store::Stub> stub_;
  std::map<int32_t, std::map<int64_t, Acked>> acked_;  // queue -> offset -> record
  std::string last_error_;
};

TEST_F(StoreDiskFullTest, SigtermAfterTheDiskFilledUpExitsCleanlyAndLosesNothing) {
  // Space to give back before the restart.
  const std::string reserve = WriteFiller("reserve", 512 << 10);
  ASSERT_NO_FATAL_FAILURE(FillDisk(/*refusals=*/5));
  ASSERT_EQ(acked_.size(), static_cast<size_t>(kQueues)) << "too little was stored";
  // The last free bytes go too, so whatever the store writes next fails:
  // the index and RocksDB's files, not just the commit log (whose failed
  // appends give their space back).
  const std::string filler = WriteFiller("filler", 4 << 20);
  // Index writes on the full disk, an offset commit and a config change:
  // they may fail or still fit (RocksDB preallocates its WAL); either way
  // nothing may break.
  sv1::CommitOffsetRequest commit;
  commit.set_group("G");
  commit.set_topic(kTopic);
  commit.set_queue_id(0);
  commit.set_offset(1);
  sv1::CommitOffsetResponse committed;
  stub_->CommitOffset(Context().get(), commit, &committed).ok();
  sv1::PutTopicRequest put;
  put.mutable_topic()->set_name("Another");
  put.mutable_topic()->set_queue_count(1);
  sv1::PutTopicResponse created;
  stub_->PutTopic(Context().get(), put, &created).ok();

  absl::StatusOr<int> status = store_->Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "store did not exit cleanly (wait status " << *status
      << (WIFSIGNALED(*status) ? absl::StrCat(", signal ", WTERMSIG(*status)) : "") << ")\n"
      << store_->LogTail();
  EXPECT_NE(store_->LogTail().find("event=stopped"), std::string::npos) << store_->LogTail();

  ASSERT_EQ(unlink(filler.c_str()), 0) << std::strerror(errno);
  ASSERT_EQ(unlink(reserve.c_str()), 0) << std::strerror(errno);
  ASSERT_TRUE(store_->Restart(/*same_port=*/false).ok()) << store_->LogTail();
  Connect();
  ASSERT_NO_FATAL_FAILURE(VerifyAcknowledged());
  // And it takes writes again.
  ASSERT_TRUE(stub_->PutTopic(Context().get(), put, &created).ok());
}

}  // namespace
}  // namespace apogee
