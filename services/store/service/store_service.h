// apogee.store.v1.Store over gRPC: an adapter over the storage engine
// (services/store/engine) that translates messages, moves every engine call
// off gRPC threads and maps errors at the edge. It holds no storage logic;
// see README.md in this folder. Append streams are served from the server's
// completion queues (services/common/server/completion_queues.h), every
// other method from gRPC's callback API.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "services/common/concurrency/executor.h"
#include "services/common/server/async_unary.h"
#include "services/common/server/completion_queues.h"
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
  // Serve only calls that came in over local credentials (the unix socket),
  // when the server also listens on --ha_listen for replication.
  bool local_calls_only = false;
};

// Append on a completion queue (served on the GrpcServer's pollers), the
// rest on the callback API.
using StoreServiceBase = ServiceWithMethods<
    sv1::Store::Service, sv1::Store::WithRawMethod_Read, sv1::Store::WithRawMethod_GetQueueOffsets,
    sv1::Store::WithRawMethod_LookupById, sv1::Store::WithRawMethod_LookupByKey,
    sv1::Store::WithRawMethod_LookupOffsetByTime, sv1::Store::WithRawMethod_CommitOffset,
    sv1::Store::WithRawMethod_FetchOffset, sv1::Store::WithRawMethod_ListOffsets,
    sv1::Store::WithRawMethod_PutTopic, sv1::Store::WithRawMethod_GetTopic,
    sv1::Store::WithRawMethod_DeleteTopic, sv1::Store::WithRawMethod_ListTopics,
    sv1::Store::WithRawMethod_PutGroup, sv1::Store::WithRawMethod_DeleteGroup,
    sv1::Store::WithRawMethod_ListGroups, sv1::Store::WithRawMethod_GetStats,
    sv1::Store::WithRawMethod_ResolveTransaction, sv1::Store::WithRawMethod_RecordTransactionCheck,
    sv1::Store::WithRawMethod_ListPending, sv1::Store::WithRawMethod_SetRole,
    sv1::Store::WithRawMethod_GetReplicationStatus, sv1::Store::WithAsyncMethod_WatchQueues,
    sv1::Store::WithAsyncMethod_Append>;

// Thread-safety: gRPC calls the handlers on its callback threads (Append:
// on the server's queue pollers); each handler only translates and hands
// the engine call to `executor` (unary calls) or to the service's Appender
// (Append streams: an idle append is led inline on the poller), and answers
// from there. StartDraining and active_calls are thread-safe. The Store,
// executor and probe must outlive the service; destroy the service only
// after the gRPC server has shut down.
class StoreService final : public StoreServiceBase, public CompletionQueueUser {
 public:
  // A unary call's context and its answer (AsyncUnaryMethod's finish).
  struct UnaryContext {
    grpc::ServerContext* server;
    std::function<void(const grpc::Status&)> finish;
  };

  StoreService(Store* store, Executor* executor, Probe* probe, StoreServiceOptions options);
  ~StoreService() override;

  // Posts waiting Append streams on each queue (GrpcServer::Start).
  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override;
  // Returns once every Append stream object is gone (GrpcServer::Shutdown).
  void Detach() override;

  // Graceful shutdown, step 1: new calls fail with UNAVAILABLE; each open
  // Append stream stops reading, answers the batches it has read and ends
  // with UNAVAILABLE. Wait for active_calls() to reach 0, then shut the
  // server down (an idle client connection would otherwise hold a gRPC
  // shutdown for its whole grace period).
  void StartDraining();
  // Calls not finished yet: unary calls and Append streams.
  int active_calls() const { return active_calls_.load(); }

  void Read(UnaryContext context, const sv1::ReadRequest* request, sv1::ReadResponse* response);
  void GetQueueOffsets(UnaryContext context, const sv1::GetQueueOffsetsRequest* request,
                       sv1::GetQueueOffsetsResponse* response);
  void LookupById(UnaryContext context, const sv1::LookupByIdRequest* request,
                  sv1::LookupByIdResponse* response);
  void LookupByKey(UnaryContext context, const sv1::LookupByKeyRequest* request,
                   sv1::LookupByKeyResponse* response);
  void LookupOffsetByTime(UnaryContext context, const sv1::LookupOffsetByTimeRequest* request,
                          sv1::LookupOffsetByTimeResponse* response);
  void CommitOffset(UnaryContext context, const sv1::CommitOffsetRequest* request,
                    sv1::CommitOffsetResponse* response);
  void FetchOffset(UnaryContext context, const sv1::FetchOffsetRequest* request,
                   sv1::FetchOffsetResponse* response);
  void ListOffsets(UnaryContext context, const sv1::ListOffsetsRequest* request,
                   sv1::ListOffsetsResponse* response);
  void PutTopic(UnaryContext context, const sv1::PutTopicRequest* request,
                sv1::PutTopicResponse* response);
  void GetTopic(UnaryContext context, const sv1::GetTopicRequest* request,
                sv1::GetTopicResponse* response);
  void DeleteTopic(UnaryContext context, const sv1::DeleteTopicRequest* request,
                   sv1::DeleteTopicResponse* response);
  void ListTopics(UnaryContext context, const sv1::ListTopicsRequest* request,
                  sv1::ListTopicsResponse* response);
  void PutGroup(UnaryContext context, const sv1::PutGroupRequest* request,
                sv1::PutGroupResponse* response);
  void DeleteGroup(UnaryContext context, const sv1::DeleteGroupRequest* request,
                   sv1::DeleteGroupResponse* response);
  void ListGroups(UnaryContext context, const sv1::ListGroupsRequest* request,
                  sv1::ListGroupsResponse* response);
  void GetStats(UnaryContext context, const sv1::GetStatsRequest* request,
                sv1::GetStatsResponse* response);
  void ResolveTransaction(UnaryContext context, const sv1::ResolveTransactionRequest* request,
                          sv1::ResolveTransactionResponse* response);
  void RecordTransactionCheck(UnaryContext context,
                              const sv1::RecordTransactionCheckRequest* request,
                              sv1::RecordTransactionCheckResponse* response);
  void ListPending(UnaryContext context, const sv1::ListPendingRequest* request,
                   sv1::ListPendingResponse* response);
  void SetRole(UnaryContext context, const sv1::SetRoleRequest* request,
               sv1::SetRoleResponse* response);
  void GetReplicationStatus(UnaryContext context, const sv1::GetReplicationStatusRequest* request,
                            sv1::GetReplicationStatusResponse* response);

 private:
  absl::Status TransactionsAvailable() const;
  // PERMISSION_DENIED for a call on the HA port (local_calls_only).
  grpc::Status CheckLocal(const grpc::ServerContext& context) const;
  // ListPending of HALF (due order with due_before, else offset order) and
  // DISCARDED records (offset order), through the transaction service.
  absl::Status ListTransactions(const sv1::ListPendingRequest& request,
                                sv1::ListPendingResponse* response);
  class AppendCall;
  class WatchCall;
  // The generated RequestX of a raw unary method.
  template <typename Base>
  using RawRequest = void (Base::*)(grpc::ServerContext*, grpc::ByteBuffer*,
                                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>*,
                                    grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  // Serves `handler` for the method `name` from the completion queues.
  template <typename Request, typename Response, typename Base>
  void AddUnary(const char* name, RawRequest<Base> request,
                void (StoreService::*handler)(UnaryContext, const Request*, Response*));

  // Runs `fn` (returning absl::Status) on the executor and finishes the call
  // with its status.
  // OK unless this store is a slave (see Replicator::CheckWritable).
  absl::Status CheckWritable(absl::string_view what) const;

  template <typename Fn>
  void RunUnary(UnaryContext context, const char* method, Fn fn);

  Store* const store_;
  Executor* const executor_;
  Probe* const probe_;
  const StoreServiceOptions options_;
  std::atomic<int> active_calls_{0};

  // Lock order: streams_mu_ before a reactor's own mutex.
  absl::Mutex streams_mu_;
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
  absl::flat_hash_set<AppendCall*> streams_ ABSL_GUARDED_BY(streams_mu_);  // started ones
  LiveCalls calls_;  // AppendCall and WatchCall objects
  std::vector<std::unique_ptr<AsyncMethod>> unary_methods_;

  Appender appender_;  // last: destroyed first, while the rest still exists
};

}  // namespace apogee::store
