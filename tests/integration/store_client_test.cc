// The broker's StoreClient against a real apogee-store process: appends
// queued behind a write leave merged as one store request, each batch still
// gets its own results, and a batch the store refuses fails alone.
#include "services/broker/store_client/store_client.h"

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/server/grpc_server.h"
#include "services/common/testing/process.h"

#ifndef APOGEE_STORE_BIN
#error "APOGEE_STORE_BIN must name the apogee-store binary"
#endif

namespace apogee::broker {
namespace {

using ::apogee::testing::ServiceProcess;
using ::apogee::testing::TempDir;
using ::testing::HasSubstr;

sv1::AppendRecord Record(int i, int keys = 1) {
  sv1::AppendRecord r;
  r.set_topic("T");
  r.set_queue_id(0);
  r.set_message_id(absl::StrCat("id-", i));
  for (int k = 0; k < keys; ++k) r.add_keys(absl::StrCat("key-", i, "-", k));
  r.set_body(absl::StrCat("body-", i));
  return r;
}

// Collects the answers of many appends.
struct Answers {
  absl::Mutex mu;
  std::vector<absl::StatusOr<std::vector<sv1::AppendResult>>> results ABSL_GUARDED_BY(mu);
  int done ABSL_GUARDED_BY(mu) = 0;

  explicit Answers(int n) : results(static_cast<size_t>(n)) {}
  StoreClient::AppendDone For(int i) {
    return [this, i](absl::StatusOr<std::vector<sv1::AppendResult>> r) {
      absl::MutexLock lock(&mu);
      results[static_cast<size_t>(i)] = std::move(r);
      done++;
    };
  }
  bool WaitAll(int n) {
    absl::MutexLock lock(&mu);
    auto all = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done == n; };
    return mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(20));
  }
};

class StoreClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto process = ServiceProcess::StartStore(APOGEE_STORE_BIN, dir_.path());
    ASSERT_TRUE(process.ok()) << process.status();
    store_ = std::move(process).value();
    client_ = std::make_unique<StoreClient>(store_->address());
    sv1::Topic topic;
    topic.set_name("T");
    topic.set_queue_count(1);
    ASSERT_TRUE(client_->PutTopic(topic).ok());
  }

  TempDir dir_;
  std::unique_ptr<ServiceProcess> store_;
  std::unique_ptr<StoreClient> client_;
};

TEST_F(StoreClientTest, AppendsQueuedBehindAWriteShareOneStoreRequest) {
  constexpr int kBatches = 2000;
  Answers answers(kBatches);
  for (int i = 0; i < kBatches; ++i) {
    std::vector<sv1::AppendRecord> batch = {Record(2 * i), Record(2 * i + 1)};
    client_->Append(std::move(batch), answers.For(i));
  }
  ASSERT_TRUE(answers.WaitAll(kBatches));
  absl::MutexLock lock(&answers.mu);
  for (int i = 0; i < kBatches; ++i) {
    const auto& r = answers.results[static_cast<size_t>(i)];
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ASSERT_EQ(r->size(), 2u);
    // Batches appended in order, each contiguous: offsets 2i and 2i+1.
    EXPECT_EQ((*r)[0].queue_offset(), 2 * i);
    EXPECT_EQ((*r)[1].queue_offset(), 2 * i + 1);
  }
  EXPECT_LT(client_->append_requests(), kBatches / 2);
}

TEST_F(StoreClientTest, ABatchTheStoreRefusesFailsAloneAndItsNeighboursAreStored) {
  constexpr int kBatches = 200, kBad = 100;
  Answers answers(kBatches);
  for (int i = 0; i < kBatches; ++i) {
    // The store takes at most 32 keys per record.
    std::vector<sv1::AppendRecord> batch = {Record(i, i == kBad ? 40 : 1)};
    client_->Append(std::move(batch), answers.For(i));
  }
  ASSERT_TRUE(answers.WaitAll(kBatches));
  absl::MutexLock lock(&answers.mu);
  for (int i = 0; i < kBatches; ++i) {
    const auto& r = answers.results[static_cast<size_t>(i)];
    if (i == kBad) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(r.status().message(), HasSubstr("batch[0]"));  // named as sent alone
    } else {
      EXPECT_TRUE(r.ok()) << i << ": " << r.status();
    }
  }
  auto offsets = client_->GetQueueOffsets("T", 0);
  ASSERT_TRUE(offsets.ok()) << offsets.status();
  EXPECT_EQ(offsets->max_offset(), kBatches - 1);
}

TEST_F(StoreClientTest, PendingAppendsFailUnavailableWhenTheStoreDies) {
  Answers answers(1);
  client_->Append({Record(0)}, answers.For(0));
  ASSERT_TRUE(answers.WaitAll(1));
  ASSERT_TRUE(store_->Stop(SIGKILL).ok());
  // Every later append answers (UNAVAILABLE), none hangs.
  Answers after(50);
  for (int i = 0; i < 50; ++i) client_->Append({Record(i)}, after.For(i));
  ASSERT_TRUE(after.WaitAll(50));
  absl::MutexLock lock(&after.mu);
  for (const auto& r : after.results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }
}

// The broker attaches its store client to its GrpcServer so appends run on
// the server's completion queue; before, across and after that (the server's
// shutdown detaches it) every append is answered and stored in order.
TEST_F(StoreClientTest, AppendsMoveToAnAttachedQueueAndBackWithoutLosingAny) {
  constexpr int kPerPhase = 300;
  Answers answers(3 * kPerPhase);
  const auto append_phase = [&](int phase) {
    for (int i = phase * kPerPhase; i < (phase + 1) * kPerPhase; ++i) {
      client_->Append({Record(i)}, answers.For(i));
    }
  };
  append_phase(0);  // on the client's own queue; some still in flight below
  GrpcServerOptions options;
  options.listen = "127.0.0.1:0";
  options.queue_users = {client_.get()};
  auto server = GrpcServer::Start(options, {});
  ASSERT_TRUE(server.ok()) << server.status();
  append_phase(1);  // on the server's queue
  ASSERT_TRUE(answers.WaitAll(2 * kPerPhase));
  (*server)->Shutdown(absl::ZeroDuration());  // detaches the client
  append_phase(2);                            // on its own queue again
  ASSERT_TRUE(answers.WaitAll(3 * kPerPhase));
  absl::MutexLock lock(&answers.mu);
  for (int i = 0; i < 3 * kPerPhase; ++i) {
    const auto& r = answers.results[static_cast<size_t>(i)];
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].queue_offset(), i);
  }
}

}  // namespace
}  // namespace apogee::broker
