// Store-to-store replication (docs/design/replication.md): the store's role
// and epoch, the master side of the Follow stream (one session per
// follower, streaming the commit log as raw bytes plus metadata snapshots),
// the in-sync set and sync-mode waiting, and the slave side (a follower
// thread that dials the master, truncates a divergent tail and appends what
// it receives).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "services/common/server/async_unary.h"
#include "services/store/engine/store.h"
#include "services/store/replication/epoch_history.h"
#include "services/store/replication/replication_metrics.h"

namespace apogee::store {

namespace sv1 = ::apogee::store::v1;

struct ReplicatorOptions {
  std::string state_dir;  // role and epoch history files (created)
  // A follower is in sync while it has held the whole log as it was at
  // most this long ago (Kafka's replica.lag.time.max.ms).
  absl::Duration replica_lag_time = absl::Seconds(3);
  // Master: a heartbeat on an idle stream; the follower acknowledges it.
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  // Master: at most one metadata snapshot per follower per interval.
  absl::Duration meta_interval = absl::Milliseconds(300);
  size_t max_chunk_bytes = 1 << 20;
  // Slave: reconnect backoff (doubles up to the max).
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
};

// Thread-safety: thread-safe. The gRPC Follow handler runs on gRPC's sync
// server threads (one per follower, for the life of its stream); the
// follower thread is the Replicator's own. OnCommitted is the store's
// commit listener and must not block. Call Shutdown() before destroying
// the Store or the gRPC servers.
class Replicator {
 public:
  // Loads the persisted role and epoch history from options.state_dir and,
  // for a slave, starts following.
  static absl::StatusOr<std::unique_ptr<Replicator>> Create(Store* store,
                                                            ReplicationMetrics* metrics,
                                                            ReplicatorOptions options);
  ~Replicator();  // Shutdown()
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Ends every Follow session and the follower thread; afterwards sync
  // waits return ABORTED at once.
  void Shutdown();

  // The store's commit listener: the log is committed up to `end`.
  void OnCommitted(int64_t end);

  // OK for a master; FAILED_PRECONDITION naming the master and epoch for a
  // slave (`what` names the refused operation).
  absl::Status CheckWritable(absl::string_view what) const;

  absl::StatusOr<sv1::SetRoleResponse> SetRole(const sv1::SetRoleRequest& request);
  sv1::GetReplicationStatusResponse Status() const;

  // Sync mode: waits until min_insync_replicas in-sync followers hold the
  // log below `end`, until stored_at + replication_timeout; ABORTED on
  // timeout. OK at once in async mode or when not a master.
  absl::Status AwaitReplicas(int64_t end, absl::Time stored_at);
  // Whether AwaitReplicas would wait now (a master in sync mode).
  bool AwaitsReplicas() const;

  // The master side of Replication.Follow, run with blocking reads and
  // writes on a thread of the call's own (ReplicationService).
  grpc::Status Follow(
      grpc::ServerContext* context,
      grpc::ServerReaderWriterInterface<sv1::FollowResponse, sv1::FollowRequest>* stream);

 private:
  struct RoleState {
    sv1::Role role = sv1::ROLE_UNSPECIFIED;  // never told: acts as a master
    int64_t epoch = 0;
    std::string master_address;
    std::string replica_id;
    sv1::ReplicationMode mode = sv1::REPLICATION_ASYNC;
    int32_t min_insync_replicas = 1;
    absl::Duration replication_timeout = absl::Seconds(3);
  };
  // One connected follower (master side).
  struct Follower {
    std::string replica_id;
    std::string peer;
    int64_t acked = 0;
    int64_t sent = 0;
    int64_t bytes_sent = 0;
    // When the follower last held everything the log had then.
    absl::Time caught_up = absl::InfinitePast();
    // Sends that reached the log end: (end, when); an ack at or past `end`
    // means the follower was caught up at `when`.
    std::list<std::pair<int64_t, absl::Time>> probes;
    bool reader_done = false;
  };

  Replicator(Store* store, ReplicationMetrics* metrics, ReplicatorOptions options);
  absl::Status Load();
  absl::Status PersistRole(const RoleState& state) const;
  bool IsMaster() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return role_.role != sv1::SLAVE; }
  bool InSync(const Follower& f, absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int HoldersLocked(int64_t end, absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Master: reads whole batches from `offset` (so a follower never holds a
  // torn batch that its recovery would cut).
  struct Batches {
    int64_t end = 0;
    std::string data;
    int64_t last_store_time_ms = 0;
  };
  absl::StatusOr<Batches> ReadBatches(int64_t offset) const;
  absl::Status SendMeta(
      grpc::ServerReaderWriterInterface<sv1::FollowResponse, sv1::FollowRequest>* stream,
      int64_t* bytes);

  // Slave.
  void StartFollowerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopFollower() ABSL_LOCKS_EXCLUDED(mu_);
  void FollowLoop(int64_t generation, std::string master_address);
  // One connection to the master: returns why it ended.
  absl::Status FollowOnce(int64_t generation, const std::string& master_address);
  absl::Status ApplyMeta(const sv1::MetaSnapshot& meta);
  // Adopts a master's later epoch as this store's own (persisted).
  absl::Status RaiseEpoch(int64_t generation, int64_t epoch);

  Store* const store_;
  ReplicationMetrics* const metrics_;
  const ReplicatorOptions options_;
  std::unique_ptr<EpochHistory> history_;

  mutable absl::Mutex mu_;
  RoleState role_ ABSL_GUARDED_BY(mu_);
  // Bumped by every role change: sessions and follower threads of an older
  // generation end.
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  std::list<Follower> followers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<grpc::ServerContext*> sessions_ ABSL_GUARDED_BY(mu_);

  // Slave state.
  std::thread follower_thread_;  // started and joined with follower_mu_ held
  absl::Mutex follower_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  grpc::ClientContext* follow_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  int64_t master_log_end_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_store_time_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t truncated_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_received_ ABSL_GUARDED_BY(mu_) = 0;
};

// apogee.store.v1.Replication on the HA port, served from its server's
// completion queue; each Follow runs Replicator::Follow on a thread of its
// own with blocking Read and Write (services/common/server/blocking_stream.h),
// so the store has no sync-API server threads.
class ReplicationService final
    : public ServiceWithMethods<sv1::Replication::Service,
                                sv1::Replication::WithAsyncMethod_Follow>,
      public CompletionQueueUser {
 public:
  explicit ReplicationService(Replicator* replicator) : replicator_(replicator) {}
  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override;
  // Returns once every Follow call object and its thread are gone.
  void Detach() override;

 private:
  class FollowCall;
  Replicator* const replicator_;
  LiveCalls calls_;
};

}  // namespace apogee::store
