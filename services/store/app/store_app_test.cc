#include "services/store/app/store_app.h"

#include <string>

#include "absl/strings/match.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/testing/process.h"

namespace apogee::store {
namespace {

TEST(ParseByteSizeTest, ReadsUnitsAndNamesTheFlagOnError) {
  EXPECT_EQ(*ParseByteSize("segment_size", "65536"), 65536);
  EXPECT_EQ(*ParseByteSize("segment_size", "64KiB"), 64 << 10);
  EXPECT_EQ(*ParseByteSize("segment_size", " 4MiB "), 4 << 20);
  EXPECT_EQ(*ParseByteSize("segment_size", "1GiB"), int64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("segment_size", "1TiB"), int64_t{1} << 40);
  EXPECT_EQ(*ParseByteSize("segment_size", "512B"), 512);
  for (const char* bad : {"", "4MB", "-1", "x", "99999999999GiB"}) {
    auto parsed = ParseByteSize("segment_size", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--segment_size=")) << bad;
  }
}

TEST(ValidateStoreConfigTest, NamesTheFlagAndItsRange) {
  StoreConfig c;
  c.data_dir = "/tmp/x";
  EXPECT_TRUE(ValidateStoreConfig(c).ok());
  struct Case {
    void (*bend)(StoreConfig&);
    const char* names;
  };
  const Case cases[] = {
      {[](StoreConfig& c) { c.data_dir.clear(); }, "--data_dir is required"},
      {[](StoreConfig& c) { c.segment_size = 1024; },
       "--segment_size=1KiB is out of range (allowed: 64KiB..1TiB)"},
      {[](StoreConfig& c) { c.max_body_size = 0; }, "--max_body_size=0"},
      {[](StoreConfig& c) { c.rocksdb_write_buffer_size = 40 << 20; }, "more than half"},
      {[](StoreConfig& c) { c.rocksdb_max_open_files = 8; }, "--rocksdb_max_open_files=8"},
      {[](StoreConfig& c) { c.disk_watermark = 0; }, "--disk_watermark=0"},
      {[](StoreConfig& c) { c.io_threads = 0; }, "--io_threads=0"},
      {[](StoreConfig& c) { c.flush_interval = absl::ZeroDuration(); }, "--flush_interval=0"},
      {[](StoreConfig& c) { c.retention = absl::Milliseconds(1); }, "--retention=1ms"},
      {[](StoreConfig& c) { c.replica_lag_time = absl::Hours(1); }, "--replica_lag_time=1h"},
  };
  for (const Case& k : cases) {
    StoreConfig bent = c;
    k.bend(bent);
    absl::Status s = ValidateStoreConfig(bent);
    EXPECT_FALSE(s.ok()) << k.names;
    EXPECT_TRUE(absl::StrContains(s.message(), k.names)) << s.message();
  }
}

// The grpc.health.v1 status the server at `target` reports; UNKNOWN when
// the call fails.
grpc::health::v1::HealthCheckResponse::ServingStatus HealthOf(const std::string& target) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse answer;
  if (!health->Check(&context, grpc::health::v1::HealthCheckRequest(), &answer).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return answer.status();
}

TEST(StoreAppTest, StartsServesAndStopsOnFreePorts) {
  testing::TempDir dir;
  StoreConfig c;
  c.data_dir = dir.path() + "/data";
  c.listen = "127.0.0.1:0";
  c.metrics_listen = "";  // disabled
  c.ha_listen = "127.0.0.1:0";
  c.segment_size = 8 << 20;
  auto app = StoreApp::Start(c);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(HealthOf((*app)->bound_address()), grpc::health::v1::HealthCheckResponse::SERVING);
  (*app)->Stop();
  (*app)->Stop();  // idempotent
  // The data dir holds the engine's files, so a second start recovers it.
  auto again = StoreApp::Start(c);
  ASSERT_TRUE(again.ok()) << again.status();
}

// On a unix socket the store serves --listen and --ha_listen from one
// server; its own API answers only on the socket, so a peer that can reach
// the HA port cannot append, read or commit offsets.
TEST(StoreAppTest, ServesItsApiOnlyOnTheSocket) {
  testing::TempDir dir;
  StoreConfig c;
  c.data_dir = dir.path() + "/data";
  c.listen = "unix:" + dir.path() + "/store.sock";
  c.metrics_listen = "";
  c.ha_listen = "127.0.0.1:0";
  c.segment_size = 8 << 20;
  auto app = StoreApp::Start(c);
  ASSERT_TRUE(app.ok()) << app.status();
  ASSERT_TRUE(absl::StartsWith((*app)->ha_bound_address(), "127.0.0.1:"))
      << (*app)->ha_bound_address();
  ASSERT_NE((*app)->ha_bound_address(), "127.0.0.1:0");
  v1::GetStatsResponse before;
  auto stats = [](const std::string& target, v1::GetStatsResponse* response) {
    auto stub = v1::Store::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->GetStats(&context, v1::GetStatsRequest(), response);
  };
  grpc::Status local = stats(c.listen, &before);
  EXPECT_TRUE(local.ok()) << local.error_message();
  v1::GetStatsResponse ignored_stats;
  grpc::Status refused = stats((*app)->ha_bound_address(), &ignored_stats);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "--ha_listen")) << refused.error_message();

  // A stream too: the append is refused, nothing is stored.
  auto ha = v1::Store::NewStub(
      grpc::CreateChannel((*app)->ha_bound_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = ha->Append(&context);
  v1::AppendRequest append;
  v1::AppendRecord* record = append.add_records();
  record->set_topic("t");
  record->set_message_id("refused-1");
  record->set_body("refused");
  stream->Write(append);
  stream->WritesDone();
  v1::AppendResponse ignored;
  while (stream->Read(&ignored)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::GetStatsResponse after;
  ASSERT_TRUE(stats(c.listen, &after).ok());
  EXPECT_EQ(after.appended_records(), before.appended_records());

  // Replication answers on the HA port (health from the same server).
  EXPECT_EQ(HealthOf((*app)->ha_bound_address()), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(StoreAppTest, RefusesAnUnwritableDataDir) {
  StoreConfig c;
  c.data_dir = "/proc/apogee-store-test";
  c.listen = "127.0.0.1:0";
  auto app = StoreApp::Start(c);
  ASSERT_FALSE(app.ok());
  EXPECT_TRUE(absl::StrContains(app.status().message(), "--data_dir=/proc/apogee-store-test"))
      << app.status();
}

}  // namespace
}  // namespace apogee::store
