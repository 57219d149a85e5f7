// A gtest fixture base for tests of the whole store: a temp dir, a manual
// clock, a fault-injecting file system over the real one, small segments,
// no background flush or retention threads (tests call Flush/RunRetention).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/clock/clock.h"
#include "services/common/testing/process.h"
#include "services/store/engine/store.h"
#include "services/store/io/fault_injecting_file_system.h"

namespace apogee::store::testing {

class StoreHarness : public ::testing::Test {
 protected:
  StoreHarness();

  // 16 KiB segments, 4 KiB max body, kAsync without a flush thread.
  StoreOptions Options(FlushMode mode = FlushMode::kAsync);
  // Opens (or reopens, after closing) the store; fails the test on error.
  void Open(StoreOptions options);
  void Open(FlushMode mode = FlushMode::kAsync) { Open(Options(mode)); }
  // Simulated machine crash: the disk drops unsynced commit-log data, then
  // the store object goes away (RocksDB keeps what it wrote).
  void Crash();

  void CreateTopic(const std::string& name, int32_t queues = 4);
  // Appends one message and expects success.
  AppendResult Append(const std::string& topic, int32_t queue, std::string body,
                      std::vector<std::string> keys = {});
  void WaitForDispatch();
  // All bodies of a queue from its minimum offset.
  std::vector<std::string> Bodies(const std::string& topic, int32_t queue);

  apogee::testing::TempDir dir_;
  ManualClock clock_;
  FaultInjectingFileSystem fs_;
  std::unique_ptr<Store> store_;
};

// Copies `from`'s log beyond `to`'s end into `to` as a follower does
// (ReadRaw, AppendReplicated) in chunks of `chunk_bytes`; returns `to`'s
// new end, or -1 after reporting a failure.
int64_t CopyLog(const Store& from, Store* to, size_t chunk_bytes = 8192);

}  // namespace apogee::store::testing
