// apogee.store.v1.Store over gRPC's callback API: an adapter over the
// storage engine (services/store/engine) that translates messages, moves
// every engine call off gRPC threads and maps errors at the edge. It holds
// no storage logic; see README.md in this folder.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "services/common/concurrency/executor.h"
#include "services/store/engine/store.h"
#include "services/store/metrics/probe.h"
#include "services/store/replication/replicator.h"
#include "services/store/service/appender.h"
#include "services/store/typed/queue_watch.h"
#include "services/store/typed/transactions.h"

namespace apogee::store {

namespace sv1 = ::apogee::store::v1;

struct StoreServiceOptions {
  // What clients may send per body; the engine checks records against
  // RecordBodyLimit of it (see record_codec.h), this layer does not.
  uint32_t max_body_size = 4u << 20;
  // Append batches read from one stream but not yet answered; past this the
  // stream stops reading (flow control back to the client).
  int max_in_flight_per_stream = 256;
  AppenderOptions appender;
  // For GetStats().disk_bytes.
  std::string data_dir;
  // Roles and replication (SetRole, GetReplicationStatus; a slave refuses
  // writes). Null: a plain master without replication.
  Replicator* replicator = nullptr;
  // Source of WatchQueues (fired timers). Null: WatchQueues is UNIMPLEMENTED.
  QueueWatch* queue_watch = nullptr;
  // ResolveTransaction, RecordTransactionCheck, ListPending. Null: UNIMPLEMENTED.
  TransactionService* transactions = nullptr;
};

// Thread-safety: gRPC calls the handlers on its callback threads; each
// handler only translates and hands the engine call to `executor` (unary
// calls) or to the service's Appender thread (Append streams), and answers
// from there. StartDraining and active_calls are thread-safe. The Store,
// executor and probe must outlive the service; destroy the service only
// after the gRPC server has shut down (its destructor appends what is still
// queued and answers the streams that wait for it).
class StoreService final : public sv1::Store::CallbackService {
 public:
  StoreService(Store* store, Executor* executor, Probe* probe, StoreServiceOptions options);
  ~StoreService() override;

  // Graceful shutdown, step 1: new calls fail with UNAVAILABLE; each open
  // Append stream stops reading, answers the batches it has read and ends
  // with UNAVAILABLE. Wait for active_calls() to reach 0, then shut the
  // server down (an idle client connection would otherwise hold a gRPC
  // shutdown for its whole grace period).
  void StartDraining();
  // Calls not finished yet: unary calls and Append streams.
  int active_calls() const { return active_calls_.load(); }

  grpc::ServerBidiReactor<sv1::AppendRequest, sv1::AppendResponse>* Append(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* context,
                                 const sv1::ReadRequest* request,
                                 sv1::ReadResponse* response) override;
  grpc::ServerUnaryReactor* GetQueueOffsets(grpc::CallbackServerContext* context,
                                            const sv1::GetQueueOffsetsRequest* request,
                                            sv1::GetQueueOffsetsResponse* response) override;
  grpc::ServerUnaryReactor* LookupById(grpc::CallbackServerContext* context,
                                       const sv1::LookupByIdRequest* request,
                                       sv1::LookupByIdResponse* response) override;
  grpc::ServerUnaryReactor* LookupByKey(grpc::CallbackServerContext* context,
                                        const sv1::LookupByKeyRequest* request,
                                        sv1::LookupByKeyResponse* response) override;
  grpc::ServerUnaryReactor* LookupOffsetByTime(grpc::CallbackServerContext* context,
                                               const sv1::LookupOffsetByTimeRequest* request,
                                               sv1::LookupOffsetByTimeResponse* response) override;
  grpc::ServerUnaryReactor* CommitOffset(grpc::CallbackServerContext* context,
                                         const sv1::CommitOffsetRequest* request,
                                         sv1::CommitOffsetResponse* response) override;
  grpc::ServerUnaryReactor* FetchOffset(grpc::CallbackServerContext* context,
                                        const sv1::FetchOffsetRequest* request,
                                        sv1::FetchOffsetResponse* response) override;
  grpc::ServerUnaryReactor* ListOffsets(grpc::CallbackServerContext* context,
                                        const sv1::ListOffsetsRequest* request,
                                        sv1::ListOffsetsResponse* response) override;
  grpc::ServerUnaryReactor* PutTopic(grpc::CallbackServerContext* context,
                                     const sv1::PutTopicRequest* request,
                                     sv1::PutTopicResponse* response) override;
  grpc::ServerUnaryReactor* GetTopic(grpc::CallbackServerContext* context,
                                     const sv1::GetTopicRequest* request,
                                     sv1::GetTopicResponse* response) override;
  grpc::ServerUnaryReactor* DeleteTopic(grpc::CallbackServerContext* context,
                                        const sv1::DeleteTopicRequest* request,
                                        sv1::DeleteTopicResponse* response) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const sv1::ListTopicsRequest* request,
                                       sv1::ListTopicsResponse* response) override;
  grpc::ServerUnaryReactor* PutGroup(grpc::CallbackServerContext* context,
                                     const sv1::PutGroupRequest* request,
                                     sv1::PutGroupResponse* response) override;
  grpc::ServerUnaryReactor* DeleteGroup(grpc::CallbackServerContext* context,
                                        const sv1::DeleteGroupRequest* request,
                                        sv1::DeleteGroupResponse* response) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* context,
                                       const sv1::ListGroupsRequest* request,
                                       sv1::ListGroupsResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const sv1::GetStatsRequest* request,
                                     sv1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* ResolveTransaction(grpc::CallbackServerContext* context,
                                               const sv1::ResolveTransactionRequest* request,
                                               sv1::ResolveTransactionResponse* response) override;
  grpc::ServerUnaryReactor* RecordTransactionCheck(
      grpc::CallbackServerContext* context, const sv1::RecordTransactionCheckRequest* request,
      sv1::RecordTransactionCheckResponse* response) override;
  grpc::ServerUnaryReactor* ListPending(grpc::CallbackServerContext* context,
                                        const sv1::ListPendingRequest* request,
                                        sv1::ListPendingResponse* response) override;
  grpc::ServerWriteReactor<sv1::QueueAdvances>* WatchQueues(
      grpc::CallbackServerContext* context, const sv1::WatchQueuesRequest* request) override;
  grpc::ServerUnaryReactor* SetRole(grpc::CallbackServerContext* context,
                                    const sv1::SetRoleRequest* request,
                                    sv1::SetRoleResponse* response) override;
  grpc::ServerUnaryReactor* GetReplicationStatus(
      grpc::CallbackServerContext* context, const sv1::GetReplicationStatusRequest* request,
      sv1::GetReplicationStatusResponse* response) override;

 private:
  absl::Status TransactionsAvailable() const;
  // ListPending of HALF (due order with due_before, else offset order) and
  // DISCARDED records (offset order), through the transaction service.
  absl::Status ListTransactions(const sv1::ListPendingRequest& request,
                                sv1::ListPendingResponse* response);
  class AppendReactor;

  // Runs `fn` (returning absl::Status) on the executor and finishes the call
  // with its status.
  // OK unless this store is a slave (see Replicator::CheckWritable).
  absl::Status CheckWritable(absl::string_view what) const;

  template <typename Fn>
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, const char* method,
                                     Fn fn);

  Store* const store_;
  Executor* const executor_;
  Probe* const probe_;
  const StoreServiceOptions options_;
  std::atomic<int> active_calls_{0};

  // Lock order: streams_mu_ before a reactor's own mutex.
  absl::Mutex streams_mu_;
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
  absl::flat_hash_set<AppendReactor*> streams_ ABSL_GUARDED_BY(streams_mu_);

  Appender appender_;  // last: destroyed first, while the rest still exists
};

}  // namespace apogee::store
