// The store's crash recovery on corrupted segment bytes. Input: byte 0 says
// how to lay the rest out as commit-log segments in a fresh directory (one
// segment, or two split at a position from byte 1, which also checks that
// segments are contiguous); then recovery runs as Store::Open runs it:
// CommitLog::Open (CRC-checks the tail, cuts a torn or corrupt one) and
// RecoverIndexes into a real RocksDB index (kept open across inputs:
// opening RocksDB costs far more than a run; see Run for when it is rebuilt). After a
// successful recovery every record left must read back (a sealed segment
// may name damage: DATA_LOSS; the checked tail never), and the log must
// take an append and return it; a failed one must say DATA_LOSS. The same bytes also go through
// AppendRaw (the path a slave takes for bytes from its master), which must refuse what does not
// parse and write nothing then.
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fuzz/fuzz_util.h"
#include "services/common/clock/clock.h"
#include "services/store/commitlog/commit_log.h"
#include "services/store/dispatch/dispatcher.h"
#include "services/store/index/index_store.h"
#include "services/store/io/posix_file_system.h"
#include "services/store/recovery/recovery.h"

namespace apogee::store {
namespace {

namespace fs = std::filesystem;
using fuzz::Fail;

constexpr int64_t kSegmentSize = 64 << 10;
constexpr uint32_t kMaxRecordSize = 16 << 10;
constexpr int64_t kRebuildEvery = 1024;

struct Dirs {
  std::string root;
  std::unique_ptr<IndexStore> index;
};

Dirs& State() {
  static Dirs* dirs = [] {
    auto* d = new Dirs();
    // tmpfs when there is one: each run syncs files, which a disk makes
    // 100x slower and which tests nothing here.
    char shm[] = "/dev/shm/apogee-fuzz-recovery-XXXXXX";
    char tmp[] = "/tmp/apogee-fuzz-recovery-XXXXXX";
    char* pattern = mkdtemp(shm) != nullptr ? shm : mkdtemp(tmp);
    if (pattern == nullptr) Fail("mkdtemp failed");
    d->root = pattern;
    // libFuzzer ends a run with exit(): leave nothing on tmpfs.
    std::atexit([] { fs::remove_all(State().root); });
    IndexOptions options;
    options.path = d->root + "/index";
    options.memory_budget = 8 << 20;
    options.write_buffer_size = 1 << 20;
    // Opened twice: a newly created index is rebuilt by every recovery.
    for (int i = 0; i < 2; ++i) {
      d->index.reset();
      auto index = IndexStore::Open(options);
      if (!index.ok()) Fail(absl::StrCat("index: ", index.status().ToString()));
      d->index = *std::move(index);
    }
    return d;
  }();
  return *dirs;
}

void WriteFile(const std::string& path, absl::string_view bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) Fail(absl::StrCat("cannot write ", path));
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    Fail(absl::StrCat("short write to ", path));
  }
  std::fclose(f);
}

std::string SegmentPath(const std::string& dir, int64_t start) {
  return absl::StrFormat("%s/%020d.log", dir, start);
}

CommitLogOptions LogOptions(const std::string& dir) {
  CommitLogOptions options;
  options.dir = dir;
  options.segment_size = kSegmentSize;
  options.max_record_size = kMaxRecordSize;
  return options;
}

// Every record in [min_offset, written_offset) reads back, chunk by chunk.
// Only a sealed segment may name damage (DATA_LOSS): Open CRC-checks the
// tail, so from the last segment's start on everything must read.
void ReadAll(const CommitLog& log) {
  const int64_t tail_start = log.ListSegments().back().start;
  int64_t offset = log.min_offset();
  while (offset < log.written_offset()) {
    auto chunk = log.ReadChunk(offset, 4096, log.written_offset());
    if (!chunk.ok()) {
      if (chunk.status().code() == absl::StatusCode::kDataLoss && offset < tail_start) {
        offset = tail_start;  // a damaged sealed segment (checked when read)
        continue;
      }
      Fail(absl::StrCat("recovered log does not read back at offset ", offset, ": ",
                        chunk.status().ToString()));
    }
    if (chunk->end <= offset) Fail("ReadChunk made no progress below the written offset");
    offset = chunk->end;
  }
}

void Recover(const std::string& dir, bool rebuild) {
  Dirs& state = State();
  auto log = CommitLog::Open(PosixFileSystem::Default(), RealClock::Default(), LogOptions(dir));
  fuzz::Answer(log.status());
  if (!log.ok()) return;
  Dispatcher dispatcher(log->get(), state.index.get());
  auto report = RecoverIndexes(log->get(), state.index.get(), &dispatcher, rebuild);
  if (!report.ok()) {
    // Open checks only the last segment (and the one before when the last
    // holds no whole record), so damage inside an earlier sealed segment is
    // found when the index replays it, and the store refuses to open. That
    // refusal must be DATA_LOSS, with more than one segment left, and the
    // tail must still read back.
    if (report.status().code() != absl::StatusCode::kDataLoss) {
      Fail(absl::StrCat("index recovery failed: ", report.status().ToString()));
    }
    if ((*log)->ListSegments().size() < 2) {
      Fail(absl::StrCat("the CRC-checked tail failed its replay: ", report.status().ToString()));
    }
    fuzz::Answer(report.status());
    ReadAll(**log);
    return;
  }
  ReadAll(**log);
  RecordInput input;
  input.topic = "FuzzTopic";
  input.body = "after recovery";
  const int64_t end = (*log)->written_offset();
  auto appended = (*log)->Append({input});
  if (!appended.ok()) Fail(absl::StrCat("append after recovery: ", appended.status().ToString()));
  auto back = (*log)->ReadRecord((*appended)[0].commit_offset);
  if ((*appended)[0].commit_offset < end || !back.ok() || back->view().body() != "after recovery") {
    Fail("the record appended after recovery does not read back");
  }
}

void Replicate(const std::string& dir, absl::string_view bytes) {
  auto log = CommitLog::Open(PosixFileSystem::Default(), RealClock::Default(), LogOptions(dir));
  if (!log.ok()) Fail(absl::StrCat("empty log: ", log.status().ToString()));
  auto end = (*log)->AppendRaw(0, bytes);
  fuzz::Answer(end.status());
  if (!end.ok() && (*log)->written_offset() != 0) Fail("a refused AppendRaw wrote bytes");
  if (end.ok()) ReadAll(**log);
}

void Run(uint8_t layout, uint8_t split, absl::string_view bytes) {
  const std::string run_dir = State().root + "/run";
  fs::remove_all(run_dir);
  const std::string log_dir = run_dir + "/commitlog";
  fs::create_directories(log_dir);
  if ((layout & 1) != 0 && !bytes.empty()) {
    // Two segments: the second starts where the first ends (or, with bit 1,
    // one byte later: a gap recovery must refuse).
    const size_t cut = bytes.size() * split / 256;
    WriteFile(SegmentPath(log_dir, 0), bytes.substr(0, cut));
    WriteFile(SegmentPath(log_dir, static_cast<int64_t>(cut) + ((layout >> 1) & 1)),
              bytes.substr(cut));
  } else {
    WriteFile(SegmentPath(log_dir, 0), bytes);
  }
  // Bits 2-4 all set: rebuild the index (as --rebuild_indexes), at most
  // once per kRebuildEvery inputs (and on a process's first input, so an
  // artifact replays the same way). Otherwise the index holds what the
  // previous input left, ahead of or behind this log, which recovery cuts
  // back or replays. A rebuild drops and re-creates RocksDB column
  // families, each rewriting and re-parsing RocksDB's OPTIONS file: ~1 s
  // under ASan against ~1 ms for a run; one input in 8 asking for it made
  // 99 % of the time.
  static int64_t since_rebuild = kRebuildEvery;
  const bool rebuild = (layout & 0x1c) == 0x1c && since_rebuild >= kRebuildEvery;
  since_rebuild = rebuild ? 0 : since_rebuild + 1;
  Recover(log_dir, rebuild);
  const std::string replica_dir = run_dir + "/replica";
  fs::create_directories(replica_dir);
  Replicate(replica_dir, bytes);
}

}  // namespace
}  // namespace apogee::store

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  apogee::store::Run(data[0], data[1],
                     absl::string_view(reinterpret_cast<const char*>(data + 2), size - 2));
  return 0;
}
