// Options of the server allocator (jemalloc, APOGEE_MALLOC in CMake), read by
// jemalloc at start-up; MALLOC_CONF in the environment still overrides them.
//
// background_thread: purge freed pages on jemalloc's own thread, so that an
//   idle process gives memory back too (without it, purging happens only
//   inside later malloc/free calls, and a broker that went quiet after a
//   burst of 4 MiB requests would keep their pages).
// dirty_decay_ms: return freed pages to the OS within ~1 s, close to glibc's
//   trimming, which the memory bounds in tests/integration/limits_test.cc
//   and the RSS targets in docs/benchmarks.md assume.
extern "C" {
// The name jemalloc looks up; it must have external linkage.
// NOLINTNEXTLINE(readability-identifier-naming)
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
