#include "services/broker/store_client/store_client.h"

#include <algorithm>
#include <cstdio>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "services/common/client/channel.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/grpc_status.h"

namespace apogee::broker {

// One Append stream, driven by the tags of its operations on one completion
// queue. At most one request is being written; batches appended meanwhile
// wait in `queued` and leave merged as the next request. Written requests
// wait in `sent` for their answer (by request id). Once an operation fails
// or the stream is cancelled it is `broken`; when the last read or write
// came back, Finish collects the status and OnFinished fails what is left.
// The stream keeps itself alive (`self`) until then.
struct StoreClient::AppendStream {
  using Call = grpc::ClientAsyncReaderWriter<sv1::AppendRequest, sv1::AppendResponse>;
  struct Batch {
    std::vector<sv1::AppendRecord> records;
    AppendDone done;
  };
  // One store request: the batches merged into it, in order.
  struct Request {
    sv1::AppendRequest proto;
    std::vector<size_t> sizes;  // records of each batch
    std::vector<AppendDone> dones;
  };
  using Op = MemberTag<AppendStream>;

  AppendStream(StoreClient* client, grpc::CompletionQueue* queue) : client(client), queue(queue) {}

  // Starts the call; reads and writes wait for OnStarted.
  void Open() {
    call = client->stub_->PrepareAsyncAppend(&context, queue);
    {
      absl::MutexLock lock(&mu);
      ops_pending = 1;
    }
    call->StartCall(&started_op);
  }

  void Cancel() {
    {
      absl::MutexLock lock(&mu);
      broken = true;
    }
    context.TryCancel();
  }

  // Ends the stream without reporting the store as gone (it is not).
  void Retire() {
    {
      absl::MutexLock lock(&mu);
      retiring = true;
    }
    Cancel();
  }
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return sent.empty() && queued.empty() && writing == nullptr;
  }

  void OnStarted(bool ok) {
    bool run;
    {
      absl::MutexLock lock(&mu);
      --ops_pending;
      if (!ok) broken = true;
      run = !broken;
      if (run) {
        started = true;
        ++ops_pending;  // the read below
      }
    }
    if (!run) return MaybeFinish();
    call->Read(&response, &read_op);
    WriteNext();
  }

  // Takes the queued batches (up to kMaxMergedAppendBytes; a larger batch
  // goes alone) into `writing`; false when there is nothing to write.
  bool TakeNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (queued.empty() || writing != nullptr || broken || !started) return false;
    auto request = std::make_shared<Request>();
    request->proto.set_request_id(next_request_id++);
    int64_t bytes = 0;
    while (!queued.empty()) {
      Batch& b = queued.front();
      int64_t batch_bytes = 0;
      for (const sv1::AppendRecord& r : b.records) {
        batch_bytes += static_cast<int64_t>(r.ByteSizeLong());
      }
      if (!request->dones.empty() && bytes + batch_bytes > kMaxMergedAppendBytes) break;
      bytes += batch_bytes;
      request->sizes.push_back(b.records.size());
      for (sv1::AppendRecord& r : b.records) *request->proto.add_records() = std::move(r);
      request->dones.push_back(std::move(b.done));
      queued.pop_front();
    }
    writing = request;
    sent[request->proto.request_id()] = std::move(request);
    ++ops_pending;  // the write the caller issues
    return true;
  }

  void WriteNext() {
    const sv1::AppendRequest* next = nullptr;
    {
      absl::MutexLock lock(&mu);
      if (TakeNext()) next = &writing->proto;
    }
    if (next == nullptr) return;
    client->append_requests_++;
    // Serialized before Write returns; `writing` keeps it alive until
    // OnWriteDone all the same.
    call->Write(*next, &write_op);
  }

  void OnWriteDone(bool ok) {
    {
      absl::MutexLock lock(&mu);
      --ops_pending;
      writing = nullptr;
      if (!ok) broken = true;
    }
    if (!ok) context.TryCancel();  // the read ends too
    MaybeFinish();
    WriteNext();
  }

  void OnReadDone(bool ok) {
    std::shared_ptr<Request> request;
    {
      absl::MutexLock lock(&mu);
      if (!ok) {
        --ops_pending;
        broken = true;
      } else {
        auto it = sent.find(response.request_id());
        if (it != sent.end()) {
          request = std::move(it->second);
          sent.erase(it);
        }
      }
    }
    if (!ok) {  // the store ended the stream (or it was cancelled)
      context.TryCancel();
      return MaybeFinish();
    }
    const sv1::AppendResponse answer = std::move(response);
    response.Clear();
    call->Read(&response, &read_op);  // still pending: the count stays
    if (request == nullptr) return;
    client->Observe(absl::OkStatus());  // any answer means the store is there
    Answer(*request, answer);
  }

  // Splits one store answer among the batches merged into its request.
  void Answer(Request& request, const sv1::AppendResponse& answer) {
    if (answer.code() != 0) {
      const absl::Status status(static_cast<absl::StatusCode>(answer.code()), answer.message());
      if (status.code() == absl::StatusCode::kInvalidArgument && request.dones.size() > 1) {
        // One bad batch refused the merged request: send each again alone.
        int offset = 0;
        for (size_t b = 0; b < request.dones.size(); ++b) {
          const auto& all = request.proto.records();
          std::vector<sv1::AppendRecord> records(all.begin() + offset,
                                                 all.begin() + offset + request.sizes[b]);
          offset += static_cast<int>(request.sizes[b]);
          client->Append(std::move(records), std::move(request.dones[b]));
        }
        return;
      }
      for (AppendDone& done : request.dones) done(status);
      return;
    }
    int offset = 0;
    for (size_t b = 0; b < request.dones.size(); ++b) {
      const int end = std::min(offset + static_cast<int>(request.sizes[b]), answer.results_size());
      request.dones[b](std::vector<sv1::AppendResult>(answer.results().begin() + offset,
                                                      answer.results().begin() + end));
      offset = end;
    }
  }

  // Once broken and no read or write is pending: collect the status.
  void MaybeFinish() {
    {
      absl::MutexLock lock(&mu);
      if (!broken || ops_pending > 0 || finishing) return;
      finishing = true;
    }
    call->Finish(&status, &finished_op);
  }

  void OnFinished(bool /*ok: always true for Finish*/) {
    std::map<uint64_t, std::shared_ptr<Request>> unanswered;
    std::deque<Batch> unsent;
    bool retired;
    {
      absl::MutexLock lock(&mu);
      unanswered.swap(sent);
      unsent.swap(queued);
      retired = retiring;
    }
    bool closing;
    {
      absl::MutexLock lock(&client->mu_);
      closing = client->closing_;
    }
    if (!closing && !retired && !status.ok()) {
      client->Observe(
          absl::UnavailableError(absl::StrCat("append stream ended: ", status.error_message())));
    }
    // The outcome of written requests is unknown; callers must treat the
    // error as "maybe appended" (the v2 client retries with the same id).
    const absl::Status ended =
        absl::UnavailableError(absl::StrCat("store append stream ended: ", status.error_message()));
    for (auto& [id, request] : unanswered) {
      for (AppendDone& done : request->dones) done(ended);
    }
    for (Batch& b : unsent) b.done(ended);
    // Not deleted here: freeing the call's context on the poller could drop
    // the channel's last reference there. The client frees it.
    absl::MutexLock lock(&client->mu_);
    client->finished_streams_.push_back(std::move(self));
    client->open_streams_[queue]--;
  }

  StoreClient* const client;
  grpc::CompletionQueue* const queue;
  grpc::ClientContext context;
  std::unique_ptr<Call> call;
  sv1::AppendResponse response;  // the read in progress
  grpc::Status status;           // Finish's
  Op started_op{this, &AppendStream::OnStarted};
  Op read_op{this, &AppendStream::OnReadDone};
  Op write_op{this, &AppendStream::OnWriteDone};
  Op finished_op{this, &AppendStream::OnFinished};
  std::shared_ptr<AppendStream> self;
  absl::Mutex mu;
  std::deque<Batch> queued ABSL_GUARDED_BY(mu);
  std::shared_ptr<Request> writing ABSL_GUARDED_BY(mu);
  std::map<uint64_t, std::shared_ptr<Request>> sent ABSL_GUARDED_BY(mu);
  uint64_t next_request_id ABSL_GUARDED_BY(mu) = 1;
  int ops_pending ABSL_GUARDED_BY(mu) = 0;  // start, read, write not back yet
  bool started ABSL_GUARDED_BY(mu) = false;
  bool broken ABSL_GUARDED_BY(mu) = false;
  bool retiring ABSL_GUARDED_BY(mu) = false;  // Retire()
  bool finishing ABSL_GUARDED_BY(mu) = false;
};

StoreClient::StoreClient(const std::string& target, absl::Duration timeout)
    : target_(target), timeout_(timeout), stub_(sv1::Store::NewStub(CreateApogeeChannel(target))) {}

void StoreClient::Observe(const absl::Status& status) {
  // Only "cannot reach the store" changes the state; a refused request
  // (INVALID_ARGUMENT, NOT_FOUND, ...) proves the store is there.
  const bool unreachable = status.code() == absl::StatusCode::kUnavailable;
  if (unreachable != available_.load(std::memory_order_relaxed)) return;  // no change
  absl::MutexLock lock(&health_mu_);
  if (unreachable != available_.load(std::memory_order_relaxed)) return;
  available_.store(!unreachable, std::memory_order_relaxed);
  if (unreachable) {
    unavailable_since_ = absl::Now();
    std::fprintf(stderr, "event=store_unavailable store=%s reason=\"%s\"\n", target_.c_str(),
                 std::string(status.message()).c_str());
  } else {
    std::fprintf(stderr, "event=store_available store=%s unavailable_for=%s\n", target_.c_str(),
                 absl::FormatDuration(absl::Now() - unavailable_since_).c_str());
  }
}

StoreClient::~StoreClient() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    // Each stream's OnFinished refers to this client.
    CloseStreams(attached_);
    CloseStreams(own_queue_.get());
    finished_streams_.clear();
  }
  if (own_queue_ != nullptr) {
    own_queue_->Shutdown();
    own_poller_.join();
  }
}

void StoreClient::Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) {
  if (queues.empty()) return;
  absl::MutexLock lock(&mu_);
  // The stream moves there once it is idle (Stream()): switching with
  // batches in flight could store later ones first.
  attached_ = queues.front();
}

void StoreClient::Detach() {
  {
    absl::MutexLock lock(&mu_);
    CloseStreams(attached_);
    attached_ = nullptr;  // calls from now on are sync
  }
  queued_calls_.AwaitNone();
}

grpc::CompletionQueue* StoreClient::BeginQueuedCall() {
  absl::MutexLock lock(&mu_);
  if (attached_ != nullptr) queued_calls_.Add();
  return attached_;
}

void StoreClient::CloseStreams(grpc::CompletionQueue* queue) {
  if (queue == nullptr) return;
  if (stream_ != nullptr && stream_->queue == queue) {
    stream_->Retire();  // what it still holds fails UNAVAILABLE
    stream_ = nullptr;
  }
  struct Open {
    std::map<grpc::CompletionQueue*, int>* streams;
    grpc::CompletionQueue* queue;
    bool None() const { return (*streams)[queue] == 0; }
  } open{&open_streams_, queue};
  mu_.Await(absl::Condition(&open, &Open::None));
}

std::unique_ptr<grpc::ClientContext> StoreClient::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return context;
}

absl::StatusOr<std::shared_ptr<StoreClient::AppendStream>> StoreClient::Stream() {
  if (closing_) return absl::UnavailableError("store client is closing");
  if (stream_ != nullptr) {
    bool idle_elsewhere;
    {
      absl::MutexLock lock(&stream_->mu);
      if (stream_->broken) {
        idle_elsewhere = false;
      } else {
        const grpc::CompletionQueue* wanted = attached_ != nullptr ? attached_ : own_queue_.get();
        if (stream_->queue == wanted || !stream_->IdleLocked()) return stream_;
        idle_elsewhere = true;
      }
    }
    if (idle_elsewhere) stream_->Retire();  // everything it took is answered
  }
  finished_streams_.clear();
  grpc::CompletionQueue* queue = attached_;
  if (queue == nullptr) {
    if (own_queue_ == nullptr) {
      own_queue_ = std::make_unique<grpc::CompletionQueue>();
      own_poller_ = std::thread([queue = own_queue_.get()] { PollCompletionQueue(queue); });
    }
    queue = own_queue_.get();
  }
  auto stream = std::make_shared<AppendStream>(this, queue);
  stream->self = stream;
  open_streams_[queue]++;
  stream->Open();
  stream_ = stream;
  return stream;
}

void StoreClient::Append(std::vector<sv1::AppendRecord> records, AppendDone done) {
  absl::StatusOr<std::shared_ptr<AppendStream>> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = Stream();
  }
  if (!stream.ok()) return done(stream.status());
  AppendStream* s = stream->get();
  bool broken;
  {
    absl::MutexLock lock(&s->mu);
    broken = s->broken;
    if (!broken) s->queued.push_back(AppendStream::Batch{std::move(records), std::move(done)});
  }
  if (broken) return done(absl::UnavailableError("store append stream is down"));
  s->WriteNext();
}

absl::StatusOr<std::vector<sv1::AppendResult>> StoreClient::AppendAndWait(
    std::vector<sv1::AppendRecord> records) {
  absl::Notification done;
  absl::StatusOr<std::vector<sv1::AppendResult>> result;
  Append(std::move(records), [&](absl::StatusOr<std::vector<sv1::AppendResult>> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<sv1::ReadResponse> StoreClient::Read(const sv1::ReadRequest& request) {
  return Call(&sv1::Store::Stub::Read, &sv1::Store::Stub::PrepareAsyncRead, request);
}

absl::StatusOr<sv1::ReadQueuesResponse> StoreClient::ReadQueues(
    const sv1::ReadQueuesRequest& request) {
  return Call(&sv1::Store::Stub::ReadQueues, &sv1::Store::Stub::PrepareAsyncReadQueues, request);
}

absl::StatusOr<sv1::GetQueueOffsetsResponse> StoreClient::GetQueueOffsets(const std::string& topic,
                                                                          int32_t queue_id) {
  sv1::GetQueueOffsetsRequest request;
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  return Call(&sv1::Store::Stub::GetQueueOffsets, &sv1::Store::Stub::PrepareAsyncGetQueueOffsets,
              request);
}

absl::StatusOr<std::vector<sv1::StoredRecord>> StoreClient::LookupById(
    const std::string& message_id) {
  sv1::LookupByIdRequest request;
  request.set_message_id(message_id);
  auto response =
      Call(&sv1::Store::Stub::LookupById, &sv1::Store::Stub::PrepareAsyncLookupById, request);
  if (!response.ok()) return response.status();
  return std::vector<sv1::StoredRecord>(response->records().begin(), response->records().end());
}

absl::StatusOr<sv1::LookupByKeyResponse> StoreClient::LookupByKey(
    const sv1::LookupByKeyRequest& request) {
  return Call(&sv1::Store::Stub::LookupByKey, &sv1::Store::Stub::PrepareAsyncLookupByKey, request);
}

absl::StatusOr<int64_t> StoreClient::LookupOffsetByTime(const std::string& topic, int32_t queue_id,
                                                        absl::Time time) {
  sv1::LookupOffsetByTimeRequest request;
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  *request.mutable_time() = ToProtoTimestamp(time);
  auto response = Call(&sv1::Store::Stub::LookupOffsetByTime,
                       &sv1::Store::Stub::PrepareAsyncLookupOffsetByTime, request);
  if (!response.ok()) return response.status();
  return response->offset();
}

absl::Status StoreClient::CommitOffset(const std::string& group, const std::string& topic,
                                       int32_t queue_id, int64_t offset) {
  sv1::CommitOffsetRequest request;
  request.set_group(group);
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  request.set_offset(offset);
  return Call(&sv1::Store::Stub::CommitOffset, &sv1::Store::Stub::PrepareAsyncCommitOffset, request)
      .status();
}

absl::Status StoreClient::CommitOffsets(const sv1::CommitOffsetsRequest& request) {
  return Call(&sv1::Store::Stub::CommitOffsets, &sv1::Store::Stub::PrepareAsyncCommitOffsets,
              request)
      .status();
}

absl::StatusOr<int64_t> StoreClient::FetchOffset(const std::string& group, const std::string& topic,
                                                 int32_t queue_id) {
  sv1::FetchOffsetRequest request;
  request.set_group(group);
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  auto response =
      Call(&sv1::Store::Stub::FetchOffset, &sv1::Store::Stub::PrepareAsyncFetchOffset, request);
  if (!response.ok()) return response.status();
  return response->offset();
}

absl::StatusOr<sv1::ListOffsetsResponse> StoreClient::ListOffsets(const std::string& group) {
  sv1::ListOffsetsRequest request;
  request.set_group(group);
  return Call(&sv1::Store::Stub::ListOffsets, &sv1::Store::Stub::PrepareAsyncListOffsets, request);
}

absl::Status StoreClient::PutTopic(const sv1::Topic& topic) {
  sv1::PutTopicRequest request;
  *request.mutable_topic() = topic;
  return Call(&sv1::Store::Stub::PutTopic, &sv1::Store::Stub::PrepareAsyncPutTopic, request)
      .status();
}

absl::Status StoreClient::DeleteTopic(const std::string& name) {
  sv1::DeleteTopicRequest request;
  request.set_name(name);
  return Call(&sv1::Store::Stub::DeleteTopic, &sv1::Store::Stub::PrepareAsyncDeleteTopic, request)
      .status();
}

absl::StatusOr<sv1::Topic> StoreClient::GetTopic(const std::string& name) {
  sv1::GetTopicRequest request;
  request.set_name(name);
  auto response =
      Call(&sv1::Store::Stub::GetTopic, &sv1::Store::Stub::PrepareAsyncGetTopic, request);
  if (!response.ok()) return response.status();
  return response->topic();
}

absl::StatusOr<std::vector<sv1::Topic>> StoreClient::ListTopics() {
  auto response = Call(&sv1::Store::Stub::ListTopics, &sv1::Store::Stub::PrepareAsyncListTopics,
                       sv1::ListTopicsRequest());
  if (!response.ok()) return response.status();
  return std::vector<sv1::Topic>(response->topics().begin(), response->topics().end());
}

absl::Status StoreClient::PutGroup(const sv1::Group& group) {
  sv1::PutGroupRequest request;
  *request.mutable_group() = group;
  return Call(&sv1::Store::Stub::PutGroup, &sv1::Store::Stub::PrepareAsyncPutGroup, request)
      .status();
}

absl::Status StoreClient::DeleteGroup(const std::string& name) {
  sv1::DeleteGroupRequest request;
  request.set_name(name);
  return Call(&sv1::Store::Stub::DeleteGroup, &sv1::Store::Stub::PrepareAsyncDeleteGroup, request)
      .status();
}

absl::StatusOr<std::vector<sv1::Group>> StoreClient::ListGroups() {
  auto response = Call(&sv1::Store::Stub::ListGroups, &sv1::Store::Stub::PrepareAsyncListGroups,
                       sv1::ListGroupsRequest());
  if (!response.ok()) return response.status();
  return std::vector<sv1::Group>(response->groups().begin(), response->groups().end());
}

absl::StatusOr<sv1::GetStatsResponse> StoreClient::GetStats() {
  return Call(&sv1::Store::Stub::GetStats, &sv1::Store::Stub::PrepareAsyncGetStats,
              sv1::GetStatsRequest());
}

absl::StatusOr<sv1::ResolveTransactionResponse> StoreClient::ResolveTransaction(
    const sv1::ResolveTransactionRequest& request) {
  return Call(&sv1::Store::Stub::ResolveTransaction,
              &sv1::Store::Stub::PrepareAsyncResolveTransaction, request);
}

absl::Status StoreClient::RecordTransactionCheck(
    const sv1::RecordTransactionCheckRequest& request) {
  return Call(&sv1::Store::Stub::RecordTransactionCheck,
              &sv1::Store::Stub::PrepareAsyncRecordTransactionCheck, request)
      .status();
}

absl::StatusOr<sv1::ListPendingResponse> StoreClient::ListPending(
    const sv1::ListPendingRequest& request) {
  return Call(&sv1::Store::Stub::ListPending, &sv1::Store::Stub::PrepareAsyncListPending, request);
}

std::unique_ptr<grpc::ClientAsyncReader<sv1::QueueAdvances>> StoreClient::PrepareWatchQueues(
    grpc::ClientContext* context, grpc::CompletionQueue* queue) {
  return stub_->PrepareAsyncWatchQueues(context, sv1::WatchQueuesRequest(), queue);
}

absl::StatusOr<sv1::SetRoleResponse> StoreClient::SetRole(const sv1::SetRoleRequest& request) {
  return Call(&sv1::Store::Stub::SetRole, &sv1::Store::Stub::PrepareAsyncSetRole, request);
}

absl::StatusOr<sv1::GetReplicationStatusResponse> StoreClient::GetReplicationStatus() {
  return Call(&sv1::Store::Stub::GetReplicationStatus,
              &sv1::Store::Stub::PrepareAsyncGetReplicationStatus,
              sv1::GetReplicationStatusRequest());
}

}  // namespace apogee::broker
