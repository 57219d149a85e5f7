// The broker's connection to its store sidecar (apogee.store.v1). Appends go
// on one stream driven from a completion queue, never blocking the caller:
// while one request is being written, the batches appended meanwhile queue
// up and leave as the next request, merged (concurrent sends share one store
// append and one frame; the broker never pays a round trip per message).
// Attached to the broker's GrpcServer, the stream runs on the server's
// completion queue, so the thread that reads the store's answer finishes the
// v2 SendMessage served there (services/common/server/completion_queues.h);
// otherwise on a queue and thread of the client's own. Everything else is a
// unary call with a deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/store/v1/store.grpc.pb.h"
#include "services/common/server/completion_queues.h"

namespace apogee::broker {

namespace sv1 = ::apogee::store::v1;

// Thread-safe. Append callbacks run on the thread polling the stream's
// completion queue (or, for a batch refused before it was sent, the
// caller's): keep them short and never block in them.
class StoreClient final : public CompletionQueueUser {
 public:
  using AppendDone = std::function<void(absl::StatusOr<std::vector<sv1::AppendResult>>)>;

  // `target` is "unix:/path/store.sock" or "host:port". Does not wait for the
  // store to be up; calls fail with UNAVAILABLE until it is.
  explicit StoreClient(const std::string& target, absl::Duration timeout = absl::Seconds(10));
  ~StoreClient() override;

  // Appends move to queues[0] (the stream moves once nothing is in flight
  // on it, so batches stay in order).
  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override;
  // Ends the stream on the attached queue and waits until it is gone;
  // appends after this open a stream on the client's own queue.
  void Detach() override;

  // Appends `records` as one batch (contiguous in the commit log, after
  // the batches appended before it); `done` gets one result per record.
  // Never blocks. Batches queued behind a write are merged into one store
  // request of up to kMaxMergedAppendBytes; when the store refuses a merged
  // request as INVALID_ARGUMENT, each batch of it is sent again alone (after
  // what was appended meanwhile), so a bad batch fails by itself with the
  // store's own message and its neighbours are stored.
  void Append(std::vector<sv1::AppendRecord> records, AppendDone done);
  static constexpr int64_t kMaxMergedAppendBytes = 4 << 20;
  // Store append requests sent so far (merged batches count once).
  int64_t append_requests() const { return append_requests_.load(); }
  // Append and wait.
  absl::StatusOr<std::vector<sv1::AppendResult>> AppendAndWait(
      std::vector<sv1::AppendRecord> records);

  absl::StatusOr<sv1::ReadResponse> Read(const sv1::ReadRequest& request);
  // Several queues in one round trip (see ReadQueuesRequest).
  absl::StatusOr<sv1::ReadQueuesResponse> ReadQueues(const sv1::ReadQueuesRequest& request);
  absl::StatusOr<sv1::GetQueueOffsetsResponse> GetQueueOffsets(const std::string& topic,
                                                               int32_t queue_id);
  // Oldest first; NOT_FOUND when no record has this id.
  absl::StatusOr<std::vector<sv1::StoredRecord>> LookupById(const std::string& message_id);
  absl::StatusOr<sv1::LookupByKeyResponse> LookupByKey(const sv1::LookupByKeyRequest& request);
  absl::StatusOr<int64_t> LookupOffsetByTime(const std::string& topic, int32_t queue_id,
                                             absl::Time time);
  absl::Status CommitOffset(const std::string& group, const std::string& topic, int32_t queue_id,
                            int64_t offset);
  // Several queues' offsets in one round trip.
  absl::Status CommitOffsets(const sv1::CommitOffsetsRequest& request);
  // NOT_FOUND when the group never committed on that queue.
  absl::StatusOr<int64_t> FetchOffset(const std::string& group, const std::string& topic,
                                      int32_t queue_id);
  absl::StatusOr<sv1::ListOffsetsResponse> ListOffsets(const std::string& group);
  absl::Status PutTopic(const sv1::Topic& topic);
  absl::Status DeleteTopic(const std::string& name);
  absl::StatusOr<sv1::Topic> GetTopic(const std::string& name);
  absl::StatusOr<std::vector<sv1::Topic>> ListTopics();
  absl::Status PutGroup(const sv1::Group& group);
  absl::Status DeleteGroup(const std::string& name);
  absl::StatusOr<std::vector<sv1::Group>> ListGroups();
  absl::StatusOr<sv1::GetStatsResponse> GetStats();
  // Transactions (docs/design/message-types.md §3).
  absl::StatusOr<sv1::ResolveTransactionResponse> ResolveTransaction(
      const sv1::ResolveTransactionRequest& request);
  absl::Status RecordTransactionCheck(const sv1::RecordTransactionCheckRequest& request);
  // Pending TIMER / HALF records (docs/design/message-types.md §6).
  absl::StatusOr<sv1::ListPendingResponse> ListPending(const sv1::ListPendingRequest& request);
  // The store's WatchQueues stream on `queue`, not started (QueueWatcher).
  // No deadline.
  std::unique_ptr<grpc::ClientAsyncReader<sv1::QueueAdvances>> PrepareWatchQueues(
      grpc::ClientContext* context, grpc::CompletionQueue* queue);
  // Replication roles (services/broker/ha). UNIMPLEMENTED from a store that
  // has no replication.
  absl::StatusOr<sv1::SetRoleResponse> SetRole(const sv1::SetRoleRequest& request);
  absl::StatusOr<sv1::GetReplicationStatusResponse> GetReplicationStatus();

 private:
  struct AppendStream;
  std::unique_ptr<grpc::ClientContext> Context() const;
  // One unary call with the client's deadline. Once attached, it runs on
  // the server's completion queue and the caller waits on a condition
  // variable: a thread blocked in a sync call would poll gRPC's shared
  // epoll set beside the queue's poller, so every store answer woke both
  // (docs/benchmarks.md). Sync on the poller itself (it must not wait for
  // its own queue) and before attaching.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(
      grpc::Status (sv1::Store::Stub::*sync)(grpc::ClientContext*, const Request&, Response*),
      std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (sv1::Store::Stub::*prepare)(
          grpc::ClientContext*, const Request&, grpc::CompletionQueue*),
      const Request& request) {
    Response response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientContext> context = Context();
    grpc::CompletionQueue* queue = polling_completion_queue ? nullptr : BeginQueuedCall();
    if (queue == nullptr) {
      status = (stub_.get()->*sync)(context.get(), request, &response);
    } else {
      WaitableTag done;
      std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader =
          (stub_.get()->*prepare)(context.get(), request, queue);
      reader->StartCall();
      reader->Finish(&response, &status, &done);
      done.Wait();
      queued_calls_.Remove();
    }
    absl::Status result = status.ok()
                              ? absl::OkStatus()
                              : absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                             status.error_message());
    Observe(result);
    if (!result.ok()) return result;
    return response;
  }
  // The attached queue, counting a unary call on it (Detach waits for
  // none); null when not attached.
  grpc::CompletionQueue* BeginQueuedCall();
  // Tracks whether the store answers: logs one line when it stops (with the
  // first error) and one when it answers again, never one per failed call.
  void Observe(const absl::Status& status);
  // Returns the live append stream, opening one if needed.
  absl::StatusOr<std::shared_ptr<AppendStream>> Stream() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends `stream_` and waits until no stream is open on `queue`.
  void CloseStreams(grpc::CompletionQueue* queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string target_;
  const absl::Duration timeout_;
  std::unique_ptr<sv1::Store::Stub> stub_;

  std::atomic<bool> available_{true};  // read without the lock on the hot path
  absl::Mutex health_mu_;              // serializes state changes and their log lines
  absl::Time unavailable_since_ ABSL_GUARDED_BY(health_mu_);

  absl::Mutex mu_;
  std::shared_ptr<AppendStream> stream_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  // Streams per queue until their last tag came back.
  std::map<grpc::CompletionQueue*, int> open_streams_ ABSL_GUARDED_BY(mu_);
  // Ended streams, freed on a caller's thread (see AppendStream::OnFinished).
  std::vector<std::shared_ptr<AppendStream>> finished_streams_ ABSL_GUARDED_BY(mu_);
  // Where new streams go: the attached queue, else the client's own (made
  // on first use, polled by own_poller_).
  grpc::CompletionQueue* attached_ ABSL_GUARDED_BY(mu_) = nullptr;
  LiveCalls queued_calls_;  // unary calls on attached_ (added under mu_)
  std::unique_ptr<grpc::CompletionQueue> own_queue_ ABSL_GUARDED_BY(mu_);
  std::thread own_poller_;
  std::atomic<int64_t> append_requests_{0};
};

}  // namespace apogee::broker
