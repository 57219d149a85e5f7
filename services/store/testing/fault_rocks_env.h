// A RocksDB Env whose file writes go through a FaultInjectingFileSystem, so
// one simulated disk (SetCapacity, fault rules) covers the commit log and
// the RocksDB index alike: a test can fill the whole disk, not just the log.
#pragma once

#include <memory>

#include "services/store/io/fault_injecting_file_system.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace apogee::store::testing {

// Files RocksDB writes (WAL, SSTs, MANIFEST, OPTIONS, its LOG) are created,
// appended, synced, truncated and deleted through `faults`; ENOSPC reaches
// RocksDB as IOStatus::NoSpace, as from a real full disk. Reads, renames,
// locks and directories use the real file system: a renamed file (CURRENT,
// OPTIONS) stays counted under its temporary name, a few KiB at most.
// FaultInjectingFileSystem::Crash() does not model RocksDB's files: do not
// combine the two. Thread-safe; `faults` must outlive this object, and
// this object every DB opened with env().
class FaultRocksEnv {
 public:
  explicit FaultRocksEnv(FaultInjectingFileSystem* faults);
  ~FaultRocksEnv();
  FaultRocksEnv(const FaultRocksEnv&) = delete;
  FaultRocksEnv& operator=(const FaultRocksEnv&) = delete;

  rocksdb::Env* env() const { return env_.get(); }

 private:
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace apogee::store::testing
