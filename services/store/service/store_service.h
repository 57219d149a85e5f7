// apogee.store.v1.Store over gRPC: an adapter over the storage engine
// (services/store/engine) that translates messages, moves every engine call
// off gRPC threads and maps errors at the edge. It holds no storage logic;
// see README.md in this folder. Every method is served from the server's
// completion queue (services/common/server/queue_service.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "services/common/concurrency/executor.h"
#include "services/common/server/completion_queues.h"
#include "services/common/server/queue_service.h"
#include "services/store/engine/store.h"
#include "services/store/metrics/probe.h"
#include "services/store/replication/replicator.h"
#include "services/store/service/appender.h"
#include "services/store/service/read_encoding.h"
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

// Thread-safety: the handlers run on the server's queue poller; each
// handler only translates and hands
// the engine call to `executor` (unary calls) or to the service's Appender
// (Append streams: an idle append is led inline on the poller), and answers
// from there. StartDraining and active_calls are thread-safe. The Store,
// executor and probe must outlive the service; destroy the service only
// after the gRPC server has shut down.
class StoreService final : public QueueService<sv1::Store> {
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

  // Read and ReadQueues answer in wire format, encoded from the records.
  void Read(UnaryCall call, const sv1::ReadRequest* request, Encoded<sv1::ReadResponse>* response);
  void ReadQueues(UnaryCall call, const sv1::ReadQueuesRequest* request,
                  Encoded<sv1::ReadQueuesResponse>* response);
  void GetQueueOffsets(UnaryCall call, const sv1::GetQueueOffsetsRequest* request,
                       sv1::GetQueueOffsetsResponse* response);
  void LookupById(UnaryCall call, const sv1::LookupByIdRequest* request,
                  sv1::LookupByIdResponse* response);
  void LookupByKey(UnaryCall call, const sv1::LookupByKeyRequest* request,
                   sv1::LookupByKeyResponse* response);
  void LookupOffsetByTime(UnaryCall call, const sv1::LookupOffsetByTimeRequest* request,
                          sv1::LookupOffsetByTimeResponse* response);
  void CommitOffset(UnaryCall call, const sv1::CommitOffsetRequest* request,
                    sv1::CommitOffsetResponse* response);
  void CommitOffsets(UnaryCall call, const sv1::CommitOffsetsRequest* request,
                     sv1::CommitOffsetsResponse* response);
  void FetchOffset(UnaryCall call, const sv1::FetchOffsetRequest* request,
                   sv1::FetchOffsetResponse* response);
  void ListOffsets(UnaryCall call, const sv1::ListOffsetsRequest* request,
                   sv1::ListOffsetsResponse* response);
  void PutTopic(UnaryCall call, const sv1::PutTopicRequest* request,
                sv1::PutTopicResponse* response);
  void GetTopic(UnaryCall call, const sv1::GetTopicRequest* request,
                sv1::GetTopicResponse* response);
  void DeleteTopic(UnaryCall call, const sv1::DeleteTopicRequest* request,
                   sv1::DeleteTopicResponse* response);
  void ListTopics(UnaryCall call, const sv1::ListTopicsRequest* request,
                  sv1::ListTopicsResponse* response);
  void PutGroup(UnaryCall call, const sv1::PutGroupRequest* request,
                sv1::PutGroupResponse* response);
  void DeleteGroup(UnaryCall call, const sv1::DeleteGroupRequest* request,
                   sv1::DeleteGroupResponse* response);
  void ListGroups(UnaryCall call, const sv1::ListGroupsRequest* request,
                  sv1::ListGroupsResponse* response);
  void GetStats(UnaryCall call, const sv1::GetStatsRequest* request,
                sv1::GetStatsResponse* response);
  void ResolveTransaction(UnaryCall call, const sv1::ResolveTransactionRequest* request,
                          sv1::ResolveTransactionResponse* response);
  void RecordTransactionCheck(UnaryCall call, const sv1::RecordTransactionCheckRequest* request,
                              sv1::RecordTransactionCheckResponse* response);
  void ListPending(UnaryCall call, const sv1::ListPendingRequest* request,
                   sv1::ListPendingResponse* response);
  void SetRole(UnaryCall call, const sv1::SetRoleRequest* request, sv1::SetRoleResponse* response);
  void GetReplicationStatus(UnaryCall call, const sv1::GetReplicationStatusRequest* request,
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
  // Posts the waiting Append streams and the WatchQueues call
  // (GrpcServer::Start); DetachStreams returns once they are all gone.
  void AttachStreams(grpc::ServerCompletionQueue* queue) override;
  void DetachStreams() override;

  // OK unless this store is a slave (see Replicator::CheckWritable).
  absl::Status CheckWritable(absl::string_view what) const;

  // Runs `fn` (returning absl::Status) on the executor and finishes the call
  // with its status; refuses calls on the HA port (CheckLocal) and while
  // draining.
  template <typename Fn>
  void RunUnary(UnaryCall call, const char* method, Fn fn);

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
  // Append and WatchQueues, served as typed async methods.
  const int append_index_;
  const int watch_index_;

  Appender appender_;  // last: destroyed first, while the rest still exists
};

}  // namespace apogee::store
