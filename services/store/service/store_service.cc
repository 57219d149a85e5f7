#include "services/store/service/store_service.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc_security_constants.h"
#include "services/common/server/watch_stream.h"
#include "services/common/status/grpc_status.h"
#include "services/common/status/status_macros.h"
#include "services/store/service/read_encoding.h"
#include "services/store/service/record_codec.h"
#include "services/store/typed/pending_list.h"

namespace apogee::store {
namespace {

constexpr int kDefaultReadMessages = 32;
constexpr int64_t kDefaultReadBytes = 4 << 20;
// Queue reads one ReadQueues call may carry.
constexpr int kMaxQueueReads = 256;
// Offsets one CommitOffsets call may carry.
constexpr int kMaxOffsetCommits = 1024;
constexpr int kDefaultLookupResults = 32;
// With a time window the engine is asked for this many candidates, which
// are then filtered by store time.
constexpr int kMaxLookupResults = 1024;

void SetError(const absl::Status& status, sv1::AppendResponse* response) {
  response->set_code(static_cast<int32_t>(status.code()));
  response->set_message(std::string(status.message()));
  response->clear_results();
}

// Lets the appender answer on its own thread while the replicator would not
// wait (no sync replication), unless main already said how to tell.
AppenderOptions WithReplicaCheck(AppenderOptions options, Replicator* replicator) {
  if (replicator != nullptr && options.await_replicas && !options.awaits_replicas) {
    options.awaits_replicas = [replicator] { return replicator->AwaitsReplicas(); };
  }
  return options;
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& tags, absl::string_view tag) {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

void ToProto(const TopicConfig& topic, sv1::Topic* out) {
  out->set_name(topic.name);
  out->set_queue_count(topic.queue_count);
  out->set_attributes(topic.attributes);
  out->set_incarnation_start(topic.incarnation_start);
}

// The store time of the record at `offset`, or nothing when retention
// removed it meanwhile.
absl::StatusOr<std::optional<google::protobuf::Timestamp>> StoreTimeAt(const Store& store,
                                                                       const std::string& topic,
                                                                       int32_t queue_id,
                                                                       int64_t offset) {
  ReadRequest read;
  read.topic = topic;
  read.queue_id = queue_id;
  read.offset = offset;
  read.max_messages = 1;
  read.max_bytes = 1;
  absl::StatusOr<ReadResult> result = store.Read(read);
  if (result.status().code() == absl::StatusCode::kOutOfRange) return std::nullopt;
  if (!result.ok()) return result.status();
  if (result->records.empty()) return std::nullopt;
  return FromMillis(result->records.front().view().store_timestamp_ms());
}

}  // namespace

// One client's Append stream, served from a completion queue. Reads run
// ahead of answers: every batch read is converted, handed to the appender
// and given a slot in `slots_`; answers are written strictly from the front
// of `slots_`, so they leave in request order however the appends complete.
// At most max_in_flight_per_stream slots exist; past that, reading pauses
// until an answer is written.
//
// Threads: the tags' reactions run on the queue's poller, Complete on the
// appender thread (or inline in OnRead, lead_inline); they share the state
// under `mu_`, and every stream operation is started under it. The object
// waits for a call (`requested_op_`), then lives until gRPC reported the
// call over (`done_op_`), its read, write and Finish came back and no
// appended batch still has to report back.
class StoreService::AppendCall final {
 public:
  AppendCall(StoreService* service, grpc::ServerCompletionQueue* queue)
      : service_(service), queue_(queue), stream_(&context_) {
    service_->calls_.Add();
    // Before the request: gRPC delivers it only for a call that started.
    context_.AsyncNotifyWhenDone(&done_op_);
    service_->RequestAsyncBidiStreaming(service_->append_index_, &context_, &stream_, queue_,
                                        queue_, &requested_op_);
  }

  // Shutdown: stop reading, answer what was read, then end the stream.
  void Drain() {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    MaybeWriteOrFinish();
  }

 private:
  struct Slot {
    bool ready = false;
    sv1::AppendResponse response;
  };
  using Op = MemberTag<AppendCall>;

  ~AppendCall() { service_->calls_.Remove(); }

  void OnRequested(bool ok) {
    if (!ok) {  // the server is shutting down: no call came (nor will done_op_)
      delete this;
      return;
    }
    new AppendCall(service_, queue_);  // the next stream waits meanwhile
    ++service_->active_calls_;
    absl::MutexLock streams(&service_->streams_mu_);
    service_->streams_.insert(this);
    absl::MutexLock lock(&mu_);
    started_ = true;
    if (grpc::Status local = service_->CheckLocal(context_); !local.ok()) {
      FinishLocked(local);
      return;
    }
    if (service_->draining_) {
      draining_ = true;
      MaybeWriteOrFinish();  // nothing read: ends at once
      return;
    }
    MaybeRead();
  }

  void OnRead(bool ok) {
    if (!ok) {  // the client half-closed (or the stream broke)
      bool last;
      {
        absl::MutexLock lock(&mu_);
        reading_ = false;
        read_closed_ = true;
        MaybeWriteOrFinish();
        last = OverLocked();
      }
      if (last) delete this;
      return;
    }
    // Convert outside the lock: only the read path touches request_.
    absl::Status invalid;
    std::vector<RecordInput> batch;
    int64_t body_bytes = 0;
    batch.reserve(static_cast<size_t>(request_.records_size()));
    for (int i = 0; i < request_.records_size(); ++i) {
      if (invalid.ok()) invalid = CheckAppendKind(request_.records(i), i);
      body_bytes += static_cast<int64_t>(request_.records(i).body().size());
      batch.push_back(ToRecordInput(request_.mutable_records(i)));
    }
    const uint64_t request_id = request_.request_id();
    request_.Clear();

    if (invalid.ok() && !batch.empty()) invalid = service_->CheckWritable("Append");

    Slot* slot;
    bool submit = false;
    {
      absl::MutexLock lock(&mu_);
      slots_.emplace_back();
      slot = &slots_.back();
      slot->response.set_request_id(request_id);
      if (!invalid.ok()) {
        service_->probe_->OnAppendError(invalid.code());
        SetError(invalid, &slot->response);
        slot->ready = true;
      } else if (batch.empty()) {
        slot->ready = true;  // nothing to append: OK with no results
      } else {
        ++outstanding_;
        submit = true;
      }
    }
    if (submit) {
      // Outside mu_: the appender may append and call Complete on this
      // thread (lead_inline). reading_ is still set, so no read starts
      // before this batch is queued: a stream's batches reach the appender
      // in request order.
      service_->appender_.Submit(
          std::move(batch), body_bytes,
          [this, slot](absl::StatusOr<std::vector<AppendResult>> r, absl::Status replication) {
            Complete(slot, std::move(r), std::move(replication));
          });
    }
    bool last;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      MaybeRead();
      MaybeWriteOrFinish();
      last = OverLocked();
    }
    if (last) delete this;
  }

  void OnWrite(bool ok) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {  // the client is gone; answers still pending are dropped
        FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "append stream write failed"));
      } else {
        slots_.pop_front();
        MaybeRead();
        MaybeWriteOrFinish();
      }
      last = OverLocked();
    }
    if (last) delete this;
  }

  void OnFinished(bool /*ok*/) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      finish_pending_ = false;
      last = OverLocked();
    }
    if (last) delete this;
  }

  // The call is over: its status reached the client, or it was cancelled.
  void OnDone(bool /*ok: always true*/) {
    {
      absl::MutexLock streams(&service_->streams_mu_);
      service_->streams_.erase(this);
    }
    --service_->active_calls_;
    bool last;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      if (context_.IsCancelled()) {
        cancelled_ = true;
        MaybeWriteOrFinish();
      }
      last = OverLocked();
    }
    if (last) delete this;
  }

  // On the appender thread, or inline in OnRead (lead_inline).
  void Complete(Slot* slot, absl::StatusOr<std::vector<AppendResult>> results,
                absl::Status replication) {
    // Only this call touches `slot` until it is marked ready.
    if (results.ok()) {
      slot->response.mutable_results()->Reserve(static_cast<int>(results->size()));
      for (const AppendResult& r : *results) {
        sv1::AppendResult* out = slot->response.add_results();
        out->set_queue_offset(r.queue_offset);
        out->set_commit_log_offset(r.commit_offset);
        *out->mutable_store_time() = FromMillis(r.store_timestamp_ms);
      }
      if (!replication.ok()) {
        // Stored here, not held by enough followers: the results stay so
        // the broker can name what was written (contract: ABORTED).
        service_->probe_->OnAppendError(replication.code());
        slot->response.set_code(static_cast<int32_t>(replication.code()));
        slot->response.set_message(std::string(replication.message()));
      }
    } else {
      SetError(results.status(), &slot->response);
    }
    bool last;
    {
      absl::MutexLock lock(&mu_);
      slot->ready = true;
      --outstanding_;
      MaybeWriteOrFinish();
      last = OverLocked();
    }
    if (last) delete this;
  }

  void MaybeRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ || read_closed_ || finished_ || cancelled_ || draining_) return;
    if (static_cast<int>(slots_.size()) >= service_->options_.max_in_flight_per_stream) return;
    reading_ = true;
    stream_.Read(&request_, &read_op_);
  }

  // Writes the next answer if it is ready, or ends the stream when nothing
  // is left to answer and no more will be read. Never finishes while a
  // write is in progress.
  void MaybeWriteOrFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!started_ || finished_ || writing_) return;
    if (cancelled_) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (!slots_.empty() && slots_.front().ready) {
      writing_ = true;
      stream_.Write(slots_.front().response, &write_op_);
      return;
    }
    if (!slots_.empty()) return;
    if (read_closed_) {
      FinishLocked(grpc::Status::OK);
    } else if (draining_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "apogee-store is shutting down (every answered batch was "
                                "handled; reconnect and resend the rest)"));
    }
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    finish_pending_ = true;
    stream_.Finish(status, &finished_op_);
  }

  // True once, for the reaction that makes the call over: nothing of it is
  // pending with gRPC or the appender any more.
  bool OverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (deleting_ || !done_ || reading_ || writing_ || finish_pending_ || outstanding_ > 0) {
      return false;
    }
    deleting_ = true;
    return true;
  }

  StoreService* const service_;
  grpc::ServerCompletionQueue* const queue_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<sv1::AppendResponse, sv1::AppendRequest> stream_;
  sv1::AppendRequest request_;  // the read in progress; only the read path uses it
  Op requested_op_{this, &AppendCall::OnRequested};
  Op read_op_{this, &AppendCall::OnRead};
  Op write_op_{this, &AppendCall::OnWrite};
  Op finished_op_{this, &AppendCall::OnFinished};
  Op done_op_{this, &AppendCall::OnDone};

  absl::Mutex mu_;
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);  // request order; deque keeps pointers stable
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;     // batches the appender has not answered
  bool started_ ABSL_GUARDED_BY(mu_) = false;    // a call arrived
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool deleting_ ABSL_GUARDED_BY(mu_) = false;
};

// One WatchQueues stream served from a completion queue: coalesces
// advances per queue while a write is in flight and sends them as one
// message. Not counted in active_calls (it lives as long as the broker);
// the server's shutdown cancels it. Advances come on the timer thread that
// reports them.
class StoreService::WatchCall final
    : public WatchStream<sv1::WatchQueuesRequest, sv1::QueueAdvances> {
 public:
  WatchCall(StoreService* service, grpc::ServerCompletionQueue* queue)
      : WatchStream(
            queue,
            [service](grpc::ServerContext* context, sv1::WatchQueuesRequest* request,
                      grpc::ServerAsyncWriter<sv1::QueueAdvances>* writer,
                      grpc::ServerCompletionQueue* queue, void* tag) {
              service->RequestAsyncServerStreaming(service->watch_index_, context, request, writer,
                                                   queue, queue, tag);
            },
            &service->calls_),
        service_(service) {}

 private:
  void OnStart() override {
    (new WatchCall(service_, queue()))->Start();
    QueueWatch* watch = service_->options_.queue_watch;
    {
      absl::MutexLock lock(&mu_);
      if (grpc::Status local = service_->CheckLocal(context()); !local.ok()) {
        FinishLocked(local);
        return;
      }
      if (watch == nullptr) {
        FinishLocked(
            grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this store has no queue watch"));
        return;
      }
      subscribed_ = true;
    }
    // Not under mu_: the listener takes it.
    id_ = watch->Subscribe([this](const std::vector<QueueAdvance>& advances) {
      absl::MutexLock lock(&mu_);
      for (const QueueAdvance& a : advances) {
        int64_t& next = pending_[a.queue];
        next = std::max(next, a.next_offset);
      }
      WriteLocked();
    });
  }

  bool TakeLocked(sv1::QueueAdvances* out) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (pending_.empty()) return false;
    out->Clear();
    for (const auto& [queue, next] : pending_) {
      sv1::QueueAdvance* a = out->add_queues();
      a->set_topic(queue.topic);
      a->set_queue_id(queue.queue_id);
      a->set_next_offset(next);
    }
    pending_.clear();
    return true;
  }

  void OnEnd() override {
    bool subscribed;
    {
      absl::MutexLock lock(&mu_);
      subscribed = subscribed_;
    }
    // No listener call after Unsubscribe returns.
    if (subscribed) service_->options_.queue_watch->Unsubscribe(id_);
  }

  StoreService* const service_;
  uint64_t id_ = 0;  // set before any listener call
  std::map<TopicQueue, int64_t> pending_ ABSL_GUARDED_BY(mu_);
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
};

StoreService::StoreService(Store* store, Executor* executor, Probe* probe,
                           StoreServiceOptions options)
    : store_(store),
      executor_(executor),
      probe_(probe),
      options_(std::move(options)),
      append_index_(MarkAsync("Append")),
      watch_index_(MarkAsync("WatchQueues")),
      appender_(store, probe, WithReplicaCheck(options_.appender, options_.replicator)) {
  ServeUnary("Read", this, &StoreService::Read);
  ServeUnary("ReadQueues", this, &StoreService::ReadQueues);
  ServeUnary("GetQueueOffsets", this, &StoreService::GetQueueOffsets);
  ServeUnary("LookupById", this, &StoreService::LookupById);
  ServeUnary("LookupByKey", this, &StoreService::LookupByKey);
  ServeUnary("LookupOffsetByTime", this, &StoreService::LookupOffsetByTime);
  ServeUnary("CommitOffset", this, &StoreService::CommitOffset);
  ServeUnary("CommitOffsets", this, &StoreService::CommitOffsets);
  ServeUnary("FetchOffset", this, &StoreService::FetchOffset);
  ServeUnary("ListOffsets", this, &StoreService::ListOffsets);
  ServeUnary("PutTopic", this, &StoreService::PutTopic);
  ServeUnary("GetTopic", this, &StoreService::GetTopic);
  ServeUnary("DeleteTopic", this, &StoreService::DeleteTopic);
  ServeUnary("ListTopics", this, &StoreService::ListTopics);
  ServeUnary("PutGroup", this, &StoreService::PutGroup);
  ServeUnary("DeleteGroup", this, &StoreService::DeleteGroup);
  ServeUnary("ListGroups", this, &StoreService::ListGroups);
  ServeUnary("GetStats", this, &StoreService::GetStats);
  ServeUnary("ResolveTransaction", this, &StoreService::ResolveTransaction);
  ServeUnary("RecordTransactionCheck", this, &StoreService::RecordTransactionCheck);
  ServeUnary("ListPending", this, &StoreService::ListPending);
  ServeUnary("SetRole", this, &StoreService::SetRole);
  ServeUnary("GetReplicationStatus", this, &StoreService::GetReplicationStatus);
}

StoreService::~StoreService() = default;

template <typename Fn>
void StoreService::RunUnary(UnaryCall call, const char* method, Fn fn) {
  if (grpc::Status local = CheckLocal(*call.context); !local.ok()) return call.finish(local);
  bool draining;
  {
    absl::MutexLock lock(&streams_mu_);
    draining = draining_;
  }
  if (draining) {
    call.finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "apogee-store is shutting down"));
    return;
  }
  ++active_calls_;
  executor_->Submit([this, call = std::move(call), method, fn = std::move(fn)]() mutable {
    const absl::Status status = fn();
    probe_->OnRequest(method, status.code());
    call.finish(ToGrpcStatus(status));
    --active_calls_;
  });
}

grpc::Status StoreService::CheckLocal(const grpc::ServerContext& context) const {
  if (!options_.local_calls_only) return grpc::Status::OK;
  const auto auth = context.auth_context();
  const auto type = auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  if (!type.empty() && std::string(type.front().data(), type.front().size()) == "local") {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "the store API is served on --listen; this is the --ha_listen port, which "
                      "serves only apogee.store.v1.Replication");
}

void StoreService::StartDraining() {
  absl::MutexLock lock(&streams_mu_);
  draining_ = true;
  for (AppendCall* stream : streams_) stream->Drain();
}

void StoreService::AttachStreams(grpc::ServerCompletionQueue* queue) {
  // Two waiting: a stream that arrives while the next one is being posted
  // is taken at once.
  for (int i = 0; i < 2; ++i) new AppendCall(this, queue);
  (new WatchCall(this, queue))->Start();
}

void StoreService::DetachStreams() { calls_.AwaitNone(); }

namespace {

// One queue read as Read and ReadQueues serve it: the request's limits (or
// the defaults), narrowed to `messages_cap` and `bytes_cap`.
absl::StatusOr<QueueRead> ReadQueue(Store& store, Probe& probe, const sv1::ReadRequest& request,
                                    int messages_cap, int64_t bytes_cap) {
  ReadRequest read;
  read.topic = request.topic();
  read.queue_id = request.queue_id();
  read.offset = request.offset();
  read.max_messages = std::min(
      request.max_messages() == 0 ? kDefaultReadMessages : request.max_messages(), messages_cap);
  read.max_bytes =
      std::min(request.max_bytes() <= 0 ? kDefaultReadBytes : request.max_bytes(), bytes_cap);
  absl::flat_hash_set<uint64_t> hashes;
  if (request.tags_size() > 0) {
    for (const std::string& tag : request.tags()) hashes.insert(TagHash(tag));
    read.tag_filter = [&hashes](uint64_t h) { return hashes.contains(h); };
  }
  QueueRead out;
  APOGEE_ASSIGN_OR_RETURN(out.read, store.Read(read));
  out.fields.reserve(out.read.records.size());
  for (const StoredRecord& record : out.read.records) {
    APOGEE_ASSIGN_OR_RETURN(RecordFields fields, FieldsOf(record));
    // The engine filtered by hash; a colliding tag is skipped here.
    if (!hashes.empty() && !Contains(request.tags(), fields.tag)) continue;
    out.body_bytes += static_cast<int64_t>(fields.body.size());
    out.fields.push_back(fields);
  }
  probe.OnRead(static_cast<int>(out.fields.size()));
  return out;
}

}  // namespace

void StoreService::Read(UnaryCall call, const sv1::ReadRequest* request,
                        Encoded<sv1::ReadResponse>* response) {
  return RunUnary(call, "Read", [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(const QueueRead queue,
                            ReadQueue(*store_, *probe_, *request, std::numeric_limits<int>::max(),
                                      std::numeric_limits<int64_t>::max()));
    response->bytes = EncodeReadResponse(queue);
    return absl::OkStatus();
  });
}

void StoreService::ReadQueues(UnaryCall call, const sv1::ReadQueuesRequest* request,
                              Encoded<sv1::ReadQueuesResponse>* response) {
  return RunUnary(call, "ReadQueues", [this, request, response]() -> absl::Status {
    if (request->reads_size() < 1 || request->reads_size() > kMaxQueueReads) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reads has ", request->reads_size(), " entries (allowed: 1..", kMaxQueueReads, ")"));
    }
    int messages_left =
        request->max_messages() <= 0 ? kDefaultReadMessages : request->max_messages();
    int64_t bytes_left = request->max_bytes() <= 0 ? kDefaultReadBytes : request->max_bytes();
    std::vector<absl::StatusOr<QueueRead>> results;
    results.reserve(static_cast<size_t>(request->reads_size()));
    for (const sv1::ReadRequest& read : request->reads()) {
      if (messages_left <= 0 || bytes_left <= 0) break;  // the rest is not read
      results.push_back(ReadQueue(*store_, *probe_, read, messages_left, bytes_left));
      if (!results.back().ok()) continue;  // answered with its code and error
      messages_left -= static_cast<int>(results.back()->fields.size());
      bytes_left -= results.back()->body_bytes;
    }
    response->bytes = EncodeReadQueuesResponse(results);
    return absl::OkStatus();
  });
}

void StoreService::GetQueueOffsets(UnaryCall call, const sv1::GetQueueOffsetsRequest* request,
                                   sv1::GetQueueOffsetsResponse* response) {
  return RunUnary(call, "GetQueueOffsets", [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(QueueRange range,
                            store_->GetQueueRange(request->topic(), request->queue_id()));
    response->set_min_offset(range.min_offset);
    response->set_max_offset(range.next_offset);
    if (range.next_offset > range.min_offset) {
      APOGEE_ASSIGN_OR_RETURN(auto min_time, StoreTimeAt(*store_, request->topic(),
                                                         request->queue_id(), range.min_offset));
      APOGEE_ASSIGN_OR_RETURN(
          auto max_time,
          StoreTimeAt(*store_, request->topic(), request->queue_id(), range.next_offset - 1));
      if (min_time.has_value()) *response->mutable_min_store_time() = *min_time;
      if (max_time.has_value()) *response->mutable_max_store_time() = *max_time;
    }
    return absl::OkStatus();
  });
}

void StoreService::LookupById(UnaryCall call, const sv1::LookupByIdRequest* request,
                              sv1::LookupByIdResponse* response) {
  return RunUnary(call, "LookupById", [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(std::vector<StoredRecord> records,
                            store_->LookupById(request->message_id()));
    for (const StoredRecord& record : records) {
      APOGEE_RETURN_IF_ERROR(ToProto(record, response->add_records()));
    }
    return absl::OkStatus();
  });
}

void StoreService::LookupByKey(UnaryCall call, const sv1::LookupByKeyRequest* request,
                               sv1::LookupByKeyResponse* response) {
  return RunUnary(call, "LookupByKey", [this, request, response]() -> absl::Status {
    const int max_results =
        request->max_results() == 0 ? kDefaultLookupResults : request->max_results();
    if (max_results < 1 || max_results > kMaxLookupResults) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_results ", request->max_results(), " is out of range [1, ", kMaxLookupResults, "]"));
    }
    const bool windowed = request->has_begin_time() || request->has_end_time();
    const int64_t begin_ms = request->has_begin_time() ? ToMillis(request->begin_time()) : 0;
    const int64_t end_ms = request->has_end_time() ? ToMillis(request->end_time()) : INT64_MAX;
    APOGEE_ASSIGN_OR_RETURN(std::vector<StoredRecord> records,
                            store_->LookupByKey(request->topic(), request->key(),
                                                windowed ? kMaxLookupResults : max_results));
    for (const StoredRecord& record : records) {
      const int64_t stored = record.view().store_timestamp_ms();
      if (stored < begin_ms || stored >= end_ms) continue;
      APOGEE_RETURN_IF_ERROR(ToProto(record, response->add_records()));
      if (response->records_size() >= max_results) break;
    }
    if (response->records_size() == 0) {
      return absl::NotFoundError(absl::StrCat("no message with key \"", request->key(),
                                              "\" in topic \"", request->topic(),
                                              "\" stored in the requested time window"));
    }
    return absl::OkStatus();
  });
}

void StoreService::LookupOffsetByTime(UnaryCall call, const sv1::LookupOffsetByTimeRequest* request,
                                      sv1::LookupOffsetByTimeResponse* response) {
  return RunUnary(call, "LookupOffsetByTime", [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(int64_t offset,
                            store_->LookupOffsetByTime(request->topic(), request->queue_id(),
                                                       ToMillis(request->time())));
    response->set_offset(offset);
    return absl::OkStatus();
  });
}

void StoreService::CommitOffset(UnaryCall call, const sv1::CommitOffsetRequest* request,
                                sv1::CommitOffsetResponse* response) {
  return RunUnary(call, "CommitOffset", [this, request]() -> absl::Status {
    return store_->CommitOffset(request->group(), request->topic(), request->queue_id(),
                                request->offset());
  });
}

void StoreService::CommitOffsets(UnaryCall call, const sv1::CommitOffsetsRequest* request,
                                 sv1::CommitOffsetsResponse* response) {
  return RunUnary(call, "CommitOffsets", [this, request]() -> absl::Status {
    if (request->offsets_size() < 1 || request->offsets_size() > kMaxOffsetCommits) {
      return absl::InvalidArgumentError(absl::StrCat("offsets has ", request->offsets_size(),
                                                     " entries (allowed: 1..", kMaxOffsetCommits,
                                                     ")"));
    }
    for (const sv1::CommitOffsetRequest& o : request->offsets()) {
      APOGEE_RETURN_IF_ERROR(store_->CommitOffset(o.group(), o.topic(), o.queue_id(), o.offset()));
    }
    return absl::OkStatus();
  });
}

void StoreService::FetchOffset(UnaryCall call, const sv1::FetchOffsetRequest* request,
                               sv1::FetchOffsetResponse* response) {
  return RunUnary(call, "FetchOffset", [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(
        ConsumerOffset offset,
        store_->FetchOffset(request->group(), request->topic(), request->queue_id()));
    response->set_offset(offset.offset);
    if (offset.commit_time_ms > 0) {
      *response->mutable_commit_time() = FromMillis(offset.commit_time_ms);
    }
    return absl::OkStatus();
  });
}

void StoreService::ListOffsets(UnaryCall call, const sv1::ListOffsetsRequest* request,
                               sv1::ListOffsetsResponse* response) {
  return RunUnary(call, "ListOffsets", [this, request, response]() -> absl::Status {
    // An empty group lists every group with offsets, including ones with no
    // stored config (per-member names of broadcasting groups).
    APOGEE_ASSIGN_OR_RETURN(std::vector<ConsumerOffset> offsets,
                            store_->ListOffsets(request->group()));
    for (const ConsumerOffset& o : offsets) {
      sv1::ConsumerOffset* out = response->add_offsets();
      out->set_group(o.group);
      out->set_topic(o.topic);
      out->set_queue_id(o.queue_id);
      out->set_offset(o.offset);
      if (o.commit_time_ms > 0) *out->mutable_commit_time() = FromMillis(o.commit_time_ms);
    }
    return absl::OkStatus();
  });
}

void StoreService::PutTopic(UnaryCall call, const sv1::PutTopicRequest* request,
                            sv1::PutTopicResponse* response) {
  return RunUnary(call, "PutTopic", [this, request]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(CheckWritable("PutTopic"));
    TopicConfig topic;
    topic.name = request->topic().name();
    topic.queue_count = request->topic().queue_count();
    topic.attributes = request->topic().attributes();
    return store_->PutTopic(topic);
  });
}

void StoreService::GetTopic(UnaryCall call, const sv1::GetTopicRequest* request,
                            sv1::GetTopicResponse* response) {
  return RunUnary(call, "GetTopic", [this, request, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(TopicConfig topic, store_->GetTopic(request->name()));
    ToProto(topic, response->mutable_topic());
    return absl::OkStatus();
  });
}

void StoreService::DeleteTopic(UnaryCall call, const sv1::DeleteTopicRequest* request,
                               sv1::DeleteTopicResponse* response) {
  return RunUnary(call, "DeleteTopic", [this, request]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(CheckWritable("DeleteTopic"));
    return store_->DeleteTopic(request->name());
  });
}

void StoreService::ListTopics(UnaryCall call, const sv1::ListTopicsRequest* request,
                              sv1::ListTopicsResponse* response) {
  return RunUnary(call, "ListTopics", [this, response]() -> absl::Status {
    for (const TopicConfig& topic : store_->ListTopics()) ToProto(topic, response->add_topics());
    return absl::OkStatus();
  });
}

void StoreService::PutGroup(UnaryCall call, const sv1::PutGroupRequest* request,
                            sv1::PutGroupResponse* response) {
  return RunUnary(call, "PutGroup", [this, request]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(CheckWritable("PutGroup"));
    return store_->PutGroup(request->group().name(), request->group().config());
  });
}

void StoreService::DeleteGroup(UnaryCall call, const sv1::DeleteGroupRequest* request,
                               sv1::DeleteGroupResponse* response) {
  return RunUnary(call, "DeleteGroup", [this, request]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(CheckWritable("DeleteGroup"));
    return store_->DeleteGroup(request->name());
  });
}

void StoreService::ListGroups(UnaryCall call, const sv1::ListGroupsRequest* request,
                              sv1::ListGroupsResponse* response) {
  return RunUnary(call, "ListGroups", [this, response]() -> absl::Status {
    APOGEE_ASSIGN_OR_RETURN(auto groups, store_->ListGroups());
    for (auto& [name, config] : groups) {
      sv1::Group* out = response->add_groups();
      out->set_name(name);
      out->set_config(config);
    }
    return absl::OkStatus();
  });
}

absl::Status StoreService::CheckWritable(absl::string_view what) const {
  if (options_.replicator == nullptr) return absl::OkStatus();
  return options_.replicator->CheckWritable(what);
}

void StoreService::SetRole(UnaryCall call, const sv1::SetRoleRequest* request,
                           sv1::SetRoleResponse* response) {
  return RunUnary(call, "SetRole", [this, request, response]() -> absl::Status {
    if (options_.replicator == nullptr) {
      return absl::UnimplementedError("this store runs without replication");
    }
    APOGEE_ASSIGN_OR_RETURN(*response, options_.replicator->SetRole(*request));
    return absl::OkStatus();
  });
}

void StoreService::GetReplicationStatus(UnaryCall call,
                                        const sv1::GetReplicationStatusRequest* request,
                                        sv1::GetReplicationStatusResponse* response) {
  return RunUnary(call, "GetReplicationStatus", [this, response]() -> absl::Status {
    if (options_.replicator == nullptr) {
      return absl::UnimplementedError("this store runs without replication");
    }
    *response = options_.replicator->Status();
    return absl::OkStatus();
  });
}

void StoreService::GetStats(UnaryCall call, const sv1::GetStatsRequest* request,
                            sv1::GetStatsResponse* response) {
  return RunUnary(call, "GetStats", [this, response]() -> absl::Status {
    const StoreStats stats = store_->Stats();
    const LogOffsets offsets = store_->GetLogOffsets();
    response->set_commit_log_min_offset(offsets.min);
    response->set_commit_log_max_offset(offsets.max);
    response->set_commit_log_flushed_offset(offsets.flushed);
    response->set_commit_log_dispatched_offset(offsets.dispatched);
    response->set_segments(stats.log.segments);
    response->set_disk_bytes(DirectoryBytes(options_.data_dir));
    response->set_appended_records(stats.log.appended_records);
    const PendingCounts pending = store_->pending_counts();
    response->set_pending_timers(pending.timers);
    response->set_pending_transactions(pending.transactions);
    APOGEE_ASSIGN_OR_RETURN(std::optional<int64_t> next_due, store_->NextTimerDue());
    if (next_due.has_value()) *response->mutable_next_timer_due() = FromMillis(*next_due);
    return absl::OkStatus();
  });
}

absl::Status StoreService::TransactionsAvailable() const {
  if (options_.transactions != nullptr) return absl::OkStatus();
  return absl::UnimplementedError("this store runs without transactions");
}

void StoreService::ResolveTransaction(UnaryCall call, const sv1::ResolveTransactionRequest* request,
                                      sv1::ResolveTransactionResponse* response) {
  return RunUnary(call, "ResolveTransaction", [this, request, response]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(TransactionsAvailable());
    ResolveRequest r;
    r.half_offset = request->half_offset();
    r.message_id = request->message_id();
    r.target_topic = request->target_topic();
    switch (request->resolution()) {
      case sv1::RESOLUTION_COMMIT:
        r.resolution = Resolution::kCommit;
        break;
      case sv1::RESOLUTION_ROLLBACK:
        r.resolution = Resolution::kRollback;
        break;
      case sv1::RESOLUTION_DISCARD:
        r.resolution = Resolution::kDiscard;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("resolution ",
                                                       sv1::Resolution_Name(request->resolution()),
                                                       " is not one of COMMIT, ROLLBACK, DISCARD"));
    }
    APOGEE_ASSIGN_OR_RETURN(ResolveResult result, options_.transactions->Resolve(r));
    response->set_already(result.already);
    if (result.record.has_value()) {
      sv1::AppendResult* out = response->mutable_result();
      out->set_queue_offset(result.record->queue_offset);
      out->set_commit_log_offset(result.record->commit_offset);
      *out->mutable_store_time() = FromMillis(result.record->store_timestamp_ms);
    }
    return absl::OkStatus();
  });
}

void StoreService::RecordTransactionCheck(UnaryCall call,
                                          const sv1::RecordTransactionCheckRequest* request,
                                          sv1::RecordTransactionCheckResponse*) {
  return RunUnary(call, "RecordTransactionCheck", [this, request]() -> absl::Status {
    APOGEE_RETURN_IF_ERROR(TransactionsAvailable());
    if (request->check_count() < 1 || !request->has_next_check()) {
      return absl::InvalidArgumentError(absl::StrCat("check_count ", request->check_count(),
                                                     " must be >= 1 and next_check must be set"));
    }
    return options_.transactions->RecordCheck(request->half_offset(),
                                              static_cast<uint32_t>(request->check_count()),
                                              ToMillis(request->next_check()));
  });
}

void StoreService::ListPending(UnaryCall call, const sv1::ListPendingRequest* request,
                               sv1::ListPendingResponse* response) {
  return RunUnary(call, "ListPending", [this, request, response]() -> absl::Status {
    const auto kind = static_cast<RecordKind>(request->kind());
    if (kind == RecordKind::kHalf || kind == RecordKind::kDiscarded) {
      return ListTransactions(*request, response);
    }
    constexpr int64_t kMaxBodyBytes = 16 << 20;
    PendingQuery query;
    query.kind = kind;
    if (request->has_due_before()) query.due_before_ms = ToMillis(request->due_before());
    query.target_topic = request->target_topic();
    query.limit = request->limit();
    if (request->has_after_due()) {
      query.after_ms = std::max<int64_t>(0, ToMillis(request->after_due()));
      query.after_offset = request->after_offset();
    }
    APOGEE_ASSIGN_OR_RETURN(PendingPage page, store::ListPending(*store_, query));
    int64_t body_bytes = 0;
    for (const StoredRecord& record : page.records) {
      if (request->include_body() && response->records_size() > 0 &&
          body_bytes + static_cast<int64_t>(record.view().body().size()) > kMaxBodyBytes) {
        page.more = true;  // the rest comes after the last one returned
        page.resume_ms = ToMillis(response->records().rbegin()->at_time());
        page.resume_offset = response->records().rbegin()->commit_log_offset();
        break;
      }
      sv1::StoredRecord* out = response->add_records();
      APOGEE_RETURN_IF_ERROR(ToProto(record, out));
      if (request->include_body()) {
        body_bytes += static_cast<int64_t>(out->body().size());
      } else {
        out->clear_body();
      }
    }
    response->set_more(page.more);
    if (page.more && page.resume_ms >= 0) {
      response->set_resume_after_offset(page.resume_offset);
      *response->mutable_resume_after_due() = FromMillis(page.resume_ms);
    }
    response->set_pending(store_->pending_counts().timers);
    return absl::OkStatus();
  });
}

absl::Status StoreService::ListTransactions(const sv1::ListPendingRequest& request,
                                            sv1::ListPendingResponse* response) {
  APOGEE_RETURN_IF_ERROR(TransactionsAvailable());
  ListPendingRequest r;
  r.kind = static_cast<RecordKind>(request.kind());
  if (request.has_due_before()) r.due_before_ms = ToMillis(request.due_before());
  r.target_topic = request.target_topic();
  r.limit = request.limit();
  r.after_offset = request.after_offset();
  APOGEE_ASSIGN_OR_RETURN(ListPendingResult result, options_.transactions->ListPending(r));
  for (const PendingRecord& pending : result.records) {
    sv1::StoredRecord* out = response->add_records();
    APOGEE_RETURN_IF_ERROR(ToProto(pending.record, out));
    if (!request.include_body()) out->clear_body();
    // The current state: CHECKED records moved the check time and count.
    if (pending.entry.at_ms != 0) *out->mutable_at_time() = FromMillis(pending.entry.at_ms);
    out->set_check_count(static_cast<int32_t>(pending.entry.count));
  }
  response->set_more(result.more);
  if (r.kind == RecordKind::kHalf) response->set_pending(store_->pending_counts().transactions);
  return absl::OkStatus();
}

}  // namespace apogee::store
