// A small client of etcd v3's gRPC API: the key/value, lease and watch calls
// the failover controller needs, with a deadline on every call and failover
// across the endpoints of an etcd cluster.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class ChannelCredentials;
class ClientContext;
}  // namespace grpc

namespace apogee::controller {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: none
};

// One comparison of a Txn.
struct EtcdCompare {
  enum class Target { kCreateRevision, kValue };
  // Holds when `key` was created at `revision`; revision 0: `key` is absent.
  static EtcdCompare CreateRevisionEquals(std::string key, int64_t revision);
  // Holds when `key` exists with exactly `value`.
  static EtcdCompare ValueEquals(std::string key, std::string value);

  Target target = Target::kCreateRevision;
  std::string key;
  int64_t revision = 0;
  std::string value;
};

// One operation of a Txn branch.
struct EtcdOp {
  enum class Kind { kPut, kDelete };
  static EtcdOp Put(std::string key, std::string value, int64_t lease = 0);
  static EtcdOp Delete(std::string key);

  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;
};

struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;  // sorted by key
  int64_t revision = 0;           // the store revision the read saw
};

struct EtcdLease {
  int64_t id = 0;
  absl::Duration ttl;  // as granted (etcd may raise a TTL below its minimum)
};

struct EtcdEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKeyValue kv;  // for kDelete only key and mod_revision are set
};

// A running watch; destroying it cancels the stream and joins its thread.
// Thread-safe.
class EtcdWatch {
 public:
  ~EtcdWatch();
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // True once the stream ended (etcd went away, the watch was canceled or
  // compacted); status() then says why. A watch does not reconnect: create a
  // new one from the last revision seen + 1.
  bool done() const;
  absl::Status status() const;

 private:
  friend class EtcdClient;
  EtcdWatch() = default;

  std::unique_ptr<grpc::ClientContext> context_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// Thread-safe. `endpoints` is "HOST:PORT[;HOST:PORT...]": a call that gets
// UNAVAILABLE from one endpoint is retried on the next (within the same
// deadline), and the endpoint that answered is tried first next time.
// Every call waits at most min(call_timeout, `max_wait`). `credentials`
// (null: plaintext) secure every endpoint's channel, e.g. TLS with a client
// certificate for an etcd started with --client-cert-auth.
class EtcdClient {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const std::string& endpoints, absl::Duration call_timeout = absl::Seconds(1),
      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  ~EtcdClient();

  // The value of `key`, or nullopt when it does not exist.
  absl::StatusOr<std::optional<EtcdKeyValue>> Get(
      const std::string& key, absl::Duration max_wait = absl::InfiniteDuration());
  // Every key starting with `prefix`.
  absl::StatusOr<EtcdRange> GetPrefix(const std::string& prefix,
                                      absl::Duration max_wait = absl::InfiniteDuration());
  // Returns the revision of the write.
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value, int64_t lease = 0,
                              absl::Duration max_wait = absl::InfiniteDuration());
  // Returns how many keys were deleted (0 or 1).
  absl::StatusOr<int64_t> Delete(const std::string& key,
                                 absl::Duration max_wait = absl::InfiniteDuration());
  absl::StatusOr<int64_t> DeletePrefix(const std::string& prefix,
                                       absl::Duration max_wait = absl::InfiniteDuration());
  // Applies `success` when every comparison holds, else `failure`; returns
  // whether the comparisons held.
  absl::StatusOr<bool> Txn(const std::vector<EtcdCompare>& compares,
                           const std::vector<EtcdOp>& success,
                           const std::vector<EtcdOp>& failure = {},
                           absl::Duration max_wait = absl::InfiniteDuration());

  // Leases. The TTL is whole seconds (etcd's unit), at least 1 s.
  absl::StatusOr<EtcdLease> LeaseGrant(absl::Duration ttl,
                                       absl::Duration max_wait = absl::InfiniteDuration());
  // Renews the lease once; returns the TTL it now has, or NOT_FOUND when the
  // lease expired or was revoked.
  absl::StatusOr<absl::Duration> LeaseKeepAlive(int64_t lease,
                                                absl::Duration max_wait = absl::InfiniteDuration());
  absl::Status LeaseRevoke(int64_t lease, absl::Duration max_wait = absl::InfiniteDuration());

  // Streams the changes to keys under `prefix` from `start_revision` (0: from
  // now) to `on_events`, called on the watch's own thread, one batch (one
  // etcd revision) at a time; `on_end` is called once when the stream ends.
  std::unique_ptr<EtcdWatch> WatchPrefix(
      const std::string& prefix, int64_t start_revision,
      std::function<void(const std::vector<EtcdEvent>&)> on_events,
      std::function<void(const absl::Status&)> on_end);

  // Fault injection for tests (a network partition between this client and
  // etcd): while set to a non-OK status, every call fails with it without
  // reaching etcd. Running watches are not affected.
  void SetFaultForTesting(absl::Status fault);

  const std::vector<std::string>& endpoints() const { return addresses_; }

 private:
  struct Endpoint;
  EtcdClient() = default;

  struct Stubs;
  // Runs `rpc` against the endpoints, starting with the last one that worked.
  template <typename Rpc>
  absl::Status Call(const char* method, absl::Duration max_wait, Rpc rpc);
  // The stubs of `endpoint`; `reset` replaces its channel first (at most once
  // a second) when it keeps failing.
  std::shared_ptr<Stubs> StubsOf(Endpoint& endpoint, bool reset);
  // range_end "": just `key`.
  absl::StatusOr<EtcdRange> Range(const std::string& key, const std::string& range_end,
                                  absl::Duration max_wait);
  absl::StatusOr<int64_t> DeleteRange(const std::string& key, const std::string& range_end,
                                      absl::Duration max_wait);

  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  absl::Duration call_timeout_;
  std::atomic<size_t> preferred_{0};
  absl::Mutex fault_mu_;
  absl::Status fault_ ABSL_GUARDED_BY(fault_mu_);
};

// The smallest key greater than every key starting with `prefix` (etcd's
// range_end for a prefix scan).
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace apogee::controller
