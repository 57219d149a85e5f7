// This machine's raw disk limits, measured the same way the store uses the
// disk, so docs/benchmarks.md can compare the store against them:
//  - BM_SequentialWrite: 256 MiB in 1 MiB write()s + one fdatasync (MB/s);
//  - BM_AppendFdatasync/<bytes>: append <bytes> then fdatasync, repeatedly
//    (fdatasyncs/s at 4 KiB, what a batch-1 sync append needs; 64 KiB for a
//    batch of 64 x 1 KiB records; 256 KiB and 1 MiB for merged groups).
// Files go to $APOGEE_BENCH_DIR (default /tmp) and are removed afterwards.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "benchmark/benchmark.h"

namespace {

std::string BenchFile() {
  const char* dir = getenv("APOGEE_BENCH_DIR");
  std::string path = (dir != nullptr && *dir != '\0' ? dir : "/tmp");
  path += "/apogee-disk-bench-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    std::perror("mkstemp");
    std::abort();
  }
  close(fd);
  return path;
}

void WriteAll(benchmark::State& state, int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      state.SkipWithError("write failed");
      return;
    }
    done += static_cast<size_t>(n);
  }
}

void BM_SequentialWrite(benchmark::State& state) {
  constexpr int64_t kTotal = int64_t{256} << 20;
  const std::string chunk(1 << 20, 'x');
  const std::string path = BenchFile();
  for (auto _ : state) {
    const int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    for (int64_t written = 0; written < kTotal; written += static_cast<int64_t>(chunk.size())) {
      WriteAll(state, fd, chunk);
    }
    if (fdatasync(fd) != 0) state.SkipWithError("fdatasync failed");
    close(fd);
  }
  unlink(path.c_str());
  state.SetBytesProcessed(state.iterations() * kTotal);
}

void BM_AppendFdatasync(benchmark::State& state) {
  const std::string data(static_cast<size_t>(state.range(0)), 'x');
  const std::string path = BenchFile();
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  for (auto _ : state) {
    WriteAll(state, fd, data);
    if (fdatasync(fd) != 0) state.SkipWithError("fdatasync failed");
  }
  close(fd);
  unlink(path.c_str());
  state.SetItemsProcessed(state.iterations());  // fdatasyncs
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_SequentialWrite)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_AppendFdatasync)
    ->ArgName("bytes")
    ->Arg(4 << 10)
    ->Arg(64 << 10)
    ->Arg(256 << 10)
    ->Arg(1 << 20)
    ->MinTime(2)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
