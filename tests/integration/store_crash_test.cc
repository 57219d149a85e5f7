// apogee-store crash test: a writer pipelines append batches with
// --flush=sync while the test SIGKILLs the store again and again. After each
// restart every acknowledged record must be in its queue, intact, at the
// queue offset it was acknowledged with; queues stay dense; the message-id
// index agrees with the queue; records whose batches were in flight at the
// kill either appear (and then stay) or never appear.
#include <signal.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "gmock/gmock.h"
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

constexpr char kTopic[] = "Crash";
constexpr int kQueues = 4;
constexpr int kCycles = 40;
constexpr int kMaxInFlight = 16;  // batches written but not yet answered

std::unique_ptr<grpc::ClientContext> Context() {
  return testing::DeadlineContext(absl::Seconds(10));
}

struct SentRecord {
  int32_t queue = 0;
  std::string tag;
  std::string body;
  uint64_t batch = 0;
};

// What the store must hold, built from what the writer sent and what the
// store acknowledged.
struct Model {
  std::map<std::string, SentRecord> sent;                     // by message id
  std::map<int32_t, std::map<int64_t, std::string>> located;  // queue -> offset -> id
  std::set<std::string> in_doubt;                             // in flight at a kill
  std::set<std::string> lost;                                 // in doubt, then absent
  std::map<uint64_t, std::vector<std::string>> doubtful_batches;
  int64_t acked = 0;
  int64_t appeared = 0;  // in-doubt records found after the restart
  int partial_batches = 0;
};

class StoreCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* seed = std::getenv("APOGEE_CRASH_SEED");
    seed_ = seed != nullptr ? std::strtoul(seed, nullptr, 10) : 20261127;
    rng_.seed(seed_);
    auto process = ServiceProcess::Start(
        "store", APOGEE_STORE_BIN,
        {absl::StrCat("--data_dir=", dir_.path(), "/data"),
         absl::StrCat("--listen=unix:", dir_.path(), "/store.sock"),
         "--metrics_listen=", "--flush=sync", "--segment_size=64KiB", "--max_body_size=8KiB"},
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

  void Connect() {
    // A fresh channel per incarnation: no reconnect backoff to wait out.
    stub_ = sv1::Store::NewStub(
        grpc::CreateChannel(store_->address(), grpc::InsecureChannelCredentials()));
  }

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  sv1::AppendRequest NextBatch() {
    sv1::AppendRequest request;
    request.set_request_id(++next_batch_);
    const int records = Uniform(1, 6);
    for (int i = 0; i < records; ++i) {
      sv1::AppendRecord* r = request.add_records();
      const std::string id = absl::StrCat("m", next_batch_, "-", i);
      r->set_topic(kTopic);
      r->set_queue_id(Uniform(0, kQueues - 1));
      r->set_message_id(id);
      r->add_keys(absl::StrCat("k", next_batch_));
      r->set_tag(absl::StrCat("t", Uniform(0, 3)));
      std::string body = absl::StrCat(id, ":");
      const int size = Uniform(20, 3000);
      while (static_cast<int>(body.size()) < size)
        body.push_back(static_cast<char>(Uniform(0, 255)));
      r->set_body(body);
      model_.sent[id] = SentRecord{r->queue_id(), r->tag(), body, next_batch_};
    }
    return request;
  }

  // One incarnation: pipeline batches, SIGKILL the store after
  // `kill_after` batches were written: with answers still outstanding, or
  // (`quiet`) once every batch was answered.
  void WriteAndKill(int kill_after, bool quiet) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto stream = stub_->Append(&context);
    absl::Mutex mu;
    std::map<uint64_t, sv1::AppendRequest> pending;  // by request id
    bool broken = false;
    std::thread reader([&] {
      sv1::AppendResponse response;
      while (stream->Read(&response)) {
        absl::MutexLock lock(&mu);
        ASSERT_FALSE(pending.empty()) << "answer " << response.request_id() << " for nothing";
        ASSERT_EQ(response.request_id(), pending.begin()->first) << "answers out of order";
        const sv1::AppendRequest& request = pending.begin()->second;
        ASSERT_EQ(response.code(), 0) << response.message();
        ASSERT_EQ(response.results_size(), request.records_size());
        for (int i = 0; i < request.records_size(); ++i) {
          const sv1::AppendRecord& r = request.records(i);
          const int64_t offset = response.results(i).queue_offset();
          auto [it, inserted] = model_.located[r.queue_id()].emplace(offset, r.message_id());
          ASSERT_TRUE(inserted) << "queue " << r.queue_id() << " offset " << offset
                                << " acknowledged twice (" << it->second << ", " << r.message_id()
                                << ")";
          ++model_.acked;
          cycle_acked_.push_back(r.message_id());
        }
        pending.erase(pending.begin());
      }
      absl::MutexLock lock(&mu);
      broken = true;
    });

    for (int b = 0; b < kill_after; ++b) {
      sv1::AppendRequest request = NextBatch();
      {
        absl::MutexLock lock(&mu);
        auto room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
          return broken || static_cast<int>(pending.size()) < kMaxInFlight;
        };
        ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&room), absl::Seconds(20)));
        if (broken) break;
        pending[request.request_id()] = request;
      }
      if (!stream->Write(request)) break;
    }
    if (quiet) {
      absl::MutexLock lock(&mu);
      auto answered = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return broken || pending.empty(); };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(20)));
    }
    ASSERT_EQ(kill(store_->pid(), SIGKILL), 0);
    reader.join();
    stream->Finish().IgnoreError();
    // Whatever was not answered may or may not have been stored.
    for (auto& [id, request] : pending) {
      for (const sv1::AppendRecord& r : request.records()) {
        model_.in_doubt.insert(r.message_id());
        model_.doubtful_batches[id].push_back(r.message_id());
      }
    }
    in_flight_at_kill_ += static_cast<int>(pending.size());
  }

  // Reads every queue in full and checks it against the model.
  void Verify() {
    std::set<std::string> present;
    for (int32_t queue = 0; queue < kQueues; ++queue) {
      int64_t offset = 0;
      int64_t last_commit = -1;
      for (int page = 0; page < 10000; ++page) {
        sv1::ReadRequest read;
        read.set_topic(kTopic);
        read.set_queue_id(queue);
        read.set_offset(offset);
        read.set_max_messages(256);
        read.set_max_bytes(8 << 20);
        sv1::ReadResponse response;
        grpc::Status s = stub_->Read(Context().get(), read, &response);
        ASSERT_TRUE(s.ok()) << s.error_message();
        if (response.records_size() == 0) {
          ASSERT_EQ(response.max_offset(), offset) << "queue " << queue << " ends early";
          break;
        }
        for (const sv1::StoredRecord& r : response.records()) {
          ASSERT_EQ(r.queue_offset(), offset) << "queue " << queue << " is not dense";
          ASSERT_GT(r.commit_log_offset(), last_commit);
          last_commit = r.commit_log_offset();
          auto sent = model_.sent.find(r.message_id());
          ASSERT_NE(sent, model_.sent.end()) << "unknown record " << r.message_id();
          ASSERT_EQ(sent->second.queue, queue) << r.message_id();
          ASSERT_EQ(r.body(), sent->second.body) << r.message_id() << " body differs";
          ASSERT_EQ(r.tag(), sent->second.tag) << r.message_id();
          ASSERT_EQ(model_.lost.count(r.message_id()), 0u)
              << r.message_id() << " was absent after an earlier restart and came back";
          auto& located = model_.located[queue];
          auto at = located.find(offset);
          if (at != located.end()) {
            ASSERT_EQ(at->second, r.message_id())
                << "queue " << queue << " offset " << offset << " holds the wrong record";
          } else {
            ASSERT_EQ(model_.in_doubt.count(r.message_id()), 1u)
                << r.message_id() << " at queue " << queue << " offset " << offset
                << " was acknowledged elsewhere";
            located.emplace(offset, r.message_id());
            ++model_.appeared;
          }
          present.insert(r.message_id());
          ++offset;
        }
      }
      // Every located (acknowledged or appeared) record of the queue was seen.
      const auto& located = model_.located[queue];
      if (!located.empty()) {
        ASSERT_LT(located.rbegin()->first, offset)
            << "acknowledged record " << located.rbegin()->second << " of queue " << queue
            << " at offset " << located.rbegin()->first << " is gone (queue ends at " << offset
            << ")";
      }
    }
    // In-doubt records are settled now: present ones stay, absent ones must
    // never show up later. A batch is all or nothing even when a SIGKILL tore
    // the log write: recovery cuts a torn tail back to the last whole batch
    // (the record format's batch-continues flag), so no batch is partly
    // present.
    for (auto& [batch, ids] : model_.doubtful_batches) {
      int found = 0;
      for (const std::string& id : ids) {
        if (present.count(id) > 0) {
          ++found;
        } else {
          model_.lost.insert(id);
        }
        model_.in_doubt.erase(id);
      }
      if (found != 0 && found != static_cast<int>(ids.size())) {
        ++model_.partial_batches;
        std::string detail;
        for (const std::string& id : ids) {
          absl::StrAppend(&detail, " ", id, "(q", model_.sent[id].queue, ",",
                          present.count(id) > 0 ? "present" : "absent", ")");
        }
        std::printf("partial batch %llu:%s\n", static_cast<unsigned long long>(batch),
                    detail.c_str());
      }
    }
    model_.doubtful_batches.clear();

    // The message-id index agrees with the queues: every record acknowledged
    // in this cycle plus a sample of older ones.
    std::vector<std::string> check = cycle_acked_;
    for (int i = 0; i < 20 && !model_.sent.empty(); ++i) {
      auto it = model_.sent.begin();
      std::advance(it, Uniform(0, static_cast<int>(model_.sent.size()) - 1));
      if (present.count(it->first) > 0) check.push_back(it->first);
    }
    cycle_acked_.clear();
    for (const std::string& id : check) {
      sv1::LookupByIdRequest lookup;
      lookup.set_message_id(id);
      sv1::LookupByIdResponse found;
      grpc::Status s = stub_->LookupById(Context().get(), lookup, &found);
      ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
      ASSERT_EQ(found.records_size(), 1) << id;
      const sv1::StoredRecord& r = found.records(0);
      const SentRecord& sent = model_.sent[id];
      ASSERT_EQ(r.queue_id(), sent.queue);
      ASSERT_EQ(model_.located[sent.queue][r.queue_offset()], id) << "lookup and queue disagree";
      ASSERT_EQ(r.body(), sent.body);
    }
  }

  TempDir dir_;
  unsigned long seed_ = 0;
  std::mt19937 rng_;
  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<sv1::Store::Stub> stub_;
  Model model_;
  uint64_t next_batch_ = 0;
  std::vector<std::string> cycle_acked_;
  int in_flight_at_kill_ = 0;
};

TEST_F(StoreCrashTest, AcknowledgedSyncAppendsSurviveRepeatedSigkill) {
  const absl::Time start = absl::Now();
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("seed ", seed_, " cycle ", cycle));
    ASSERT_NO_FATAL_FAILURE(WriteAndKill(Uniform(4, 64), /*quiet=*/Uniform(0, 3) == 0));
    ASSERT_TRUE(store_->Restart(/*same_port=*/false).ok()) << store_->LogTail();
    Connect();
    ASSERT_NO_FATAL_FAILURE(Verify());
  }
  sv1::GetStatsResponse stats;
  ASSERT_TRUE(stub_->GetStats(Context().get(), {}, &stats).ok());
  EXPECT_GT(stats.segments(), 5) << "segments should have rolled";
  EXPECT_GT(model_.acked, 1000);
  EXPECT_EQ(model_.partial_batches, 0) << "batches must be stored whole or not at all";
  // How many restarts cut a torn tail off the log (from the store's log).
  int torn_tails = 0;
  const std::string log = store_->LogTail(size_t{64} << 20);
  for (size_t at = log.find("event=recovered"); at != std::string::npos;
       at = log.find("event=recovered", at + 1)) {
    const size_t field = log.find("truncated_bytes=", at);
    if (field != std::string::npos && log.compare(field, 18, "truncated_bytes=0 ") != 0) {
      ++torn_tails;
    }
  }
  std::printf(
      "crash test: seed=%lu cycles=%d acked_records=%lld batches_in_flight_at_kill=%d "
      "in_doubt_records_appeared=%lld lost=%zu partial_batches=%d torn_tails=%d segments=%d "
      "took=%s\n",
      seed_, kCycles, static_cast<long long>(model_.acked), in_flight_at_kill_,
      static_cast<long long>(model_.appeared), model_.lost.size(), model_.partial_batches,
      torn_tails, stats.segments(), absl::FormatDuration(absl::Now() - start).c_str());
}

}  // namespace
}  // namespace apogee
