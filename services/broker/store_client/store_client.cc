#include "services/broker/store_client/store_client.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "services/common/client/channel.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/grpc_status.h"

namespace apogee::broker {

// One Append stream: writes are serialized by `write_mu`; a reader thread
// matches answers to pending batches by request id.
struct StoreClient::AppendStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<sv1::AppendRequest, sv1::AppendResponse>> rw;
  absl::Mutex write_mu;
  absl::Mutex pending_mu;
  std::map<uint64_t, AppendDone> pending ABSL_GUARDED_BY(pending_mu);
  bool broken ABSL_GUARDED_BY(pending_mu) = false;
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
  std::vector<std::thread> readers;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    if (stream_ != nullptr) stream_->context.TryCancel();
    readers.swap(readers_);
  }
  for (std::thread& t : readers) t.join();
}

std::unique_ptr<grpc::ClientContext> StoreClient::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return context;
}

absl::StatusOr<std::shared_ptr<StoreClient::AppendStream>> StoreClient::Stream() {
  if (closing_) return absl::UnavailableError("store client is closing");
  if (stream_ != nullptr) {
    absl::MutexLock lock(&stream_->pending_mu);
    if (!stream_->broken) return stream_;
  }
  auto stream = std::make_shared<AppendStream>();
  stream->rw = stub_->Append(&stream->context);
  stream_ = stream;
  readers_.emplace_back([this, stream] { ReadLoop(stream); });
  return stream;
}

void StoreClient::ReadLoop(std::shared_ptr<AppendStream> stream) {
  sv1::AppendResponse response;
  while (stream->rw->Read(&response)) {
    AppendDone done;
    {
      absl::MutexLock lock(&stream->pending_mu);
      auto it = stream->pending.find(response.request_id());
      if (it == stream->pending.end()) continue;
      done = std::move(it->second);
      stream->pending.erase(it);
    }
    Observe(absl::OkStatus());  // any answer means the store is there
    if (response.code() != 0) {
      done(absl::Status(static_cast<absl::StatusCode>(response.code()), response.message()));
    } else {
      done(std::vector<sv1::AppendResult>(response.results().begin(), response.results().end()));
    }
  }
  grpc::Status status = stream->rw->Finish();
  bool closing;
  {
    absl::MutexLock lock(&mu_);
    closing = closing_;
  }
  if (!closing && !status.ok()) {
    Observe(absl::UnavailableError(absl::StrCat("append stream ended: ", status.error_message())));
  }
  std::map<uint64_t, AppendDone> failed;
  {
    absl::MutexLock lock(&stream->pending_mu);
    stream->broken = true;
    failed.swap(stream->pending);
  }
  // The outcome of in-flight batches is unknown; callers must treat the
  // error as "maybe appended" (the v2 client retries with the same id).
  for (auto& [id, done] : failed) {
    done(absl::UnavailableError(
        absl::StrCat("store append stream ended: ", status.error_message())));
  }
}

void StoreClient::Append(std::vector<sv1::AppendRecord> records, AppendDone done) {
  std::shared_ptr<AppendStream> stream;
  sv1::AppendRequest request;
  {
    absl::MutexLock lock(&mu_);
    auto s = Stream();
    if (!s.ok()) {
      done(s.status());
      return;
    }
    stream = *s;
    request.set_request_id(next_request_id_++);
  }
  for (sv1::AppendRecord& r : records) *request.add_records() = std::move(r);
  {
    absl::MutexLock lock(&stream->pending_mu);
    if (stream->broken) {
      done(absl::UnavailableError("store append stream is down"));
      return;
    }
    stream->pending[request.request_id()] = std::move(done);
  }
  bool written;
  {
    absl::MutexLock lock(&stream->write_mu);
    written = stream->rw->Write(request);
  }
  if (!written) stream->context.TryCancel();  // the reader fails pending batches
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
  return Call(&sv1::Store::Stub::Read, request);
}

absl::StatusOr<sv1::GetQueueOffsetsResponse> StoreClient::GetQueueOffsets(const std::string& topic,
                                                                          int32_t queue_id) {
  sv1::GetQueueOffsetsRequest request;
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  return Call(&sv1::Store::Stub::GetQueueOffsets, request);
}

absl::StatusOr<std::vector<sv1::StoredRecord>> StoreClient::LookupById(
    const std::string& message_id) {
  sv1::LookupByIdRequest request;
  request.set_message_id(message_id);
  auto response = Call(&sv1::Store::Stub::LookupById, request);
  if (!response.ok()) return response.status();
  return std::vector<sv1::StoredRecord>(response->records().begin(), response->records().end());
}

absl::StatusOr<sv1::LookupByKeyResponse> StoreClient::LookupByKey(
    const sv1::LookupByKeyRequest& request) {
  return Call(&sv1::Store::Stub::LookupByKey, request);
}

absl::StatusOr<int64_t> StoreClient::LookupOffsetByTime(const std::string& topic, int32_t queue_id,
                                                        absl::Time time) {
  sv1::LookupOffsetByTimeRequest request;
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  *request.mutable_time() = ToProtoTimestamp(time);
  auto response = Call(&sv1::Store::Stub::LookupOffsetByTime, request);
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
  return Call(&sv1::Store::Stub::CommitOffset, request).status();
}

absl::StatusOr<int64_t> StoreClient::FetchOffset(const std::string& group, const std::string& topic,
                                                 int32_t queue_id) {
  sv1::FetchOffsetRequest request;
  request.set_group(group);
  request.set_topic(topic);
  request.set_queue_id(queue_id);
  auto response = Call(&sv1::Store::Stub::FetchOffset, request);
  if (!response.ok()) return response.status();
  return response->offset();
}

absl::StatusOr<sv1::ListOffsetsResponse> StoreClient::ListOffsets(const std::string& group) {
  sv1::ListOffsetsRequest request;
  request.set_group(group);
  return Call(&sv1::Store::Stub::ListOffsets, request);
}

absl::Status StoreClient::PutTopic(const sv1::Topic& topic) {
  sv1::PutTopicRequest request;
  *request.mutable_topic() = topic;
  return Call(&sv1::Store::Stub::PutTopic, request).status();
}

absl::Status StoreClient::DeleteTopic(const std::string& name) {
  sv1::DeleteTopicRequest request;
  request.set_name(name);
  return Call(&sv1::Store::Stub::DeleteTopic, request).status();
}

absl::StatusOr<sv1::Topic> StoreClient::GetTopic(const std::string& name) {
  sv1::GetTopicRequest request;
  request.set_name(name);
  auto response = Call(&sv1::Store::Stub::GetTopic, request);
  if (!response.ok()) return response.status();
  return response->topic();
}

absl::StatusOr<std::vector<sv1::Topic>> StoreClient::ListTopics() {
  auto response = Call(&sv1::Store::Stub::ListTopics, sv1::ListTopicsRequest());
  if (!response.ok()) return response.status();
  return std::vector<sv1::Topic>(response->topics().begin(), response->topics().end());
}

absl::Status StoreClient::PutGroup(const sv1::Group& group) {
  sv1::PutGroupRequest request;
  *request.mutable_group() = group;
  return Call(&sv1::Store::Stub::PutGroup, request).status();
}

absl::Status StoreClient::DeleteGroup(const std::string& name) {
  sv1::DeleteGroupRequest request;
  request.set_name(name);
  return Call(&sv1::Store::Stub::DeleteGroup, request).status();
}

absl::StatusOr<std::vector<sv1::Group>> StoreClient::ListGroups() {
  auto response = Call(&sv1::Store::Stub::ListGroups, sv1::ListGroupsRequest());
  if (!response.ok()) return response.status();
  return std::vector<sv1::Group>(response->groups().begin(), response->groups().end());
}

absl::StatusOr<sv1::GetStatsResponse> StoreClient::GetStats() {
  return Call(&sv1::Store::Stub::GetStats, sv1::GetStatsRequest());
}

absl::StatusOr<sv1::SetRoleResponse> StoreClient::SetRole(const sv1::SetRoleRequest& request) {
  return Call(&sv1::Store::Stub::SetRole, request);
}

absl::StatusOr<sv1::GetReplicationStatusResponse> StoreClient::GetReplicationStatus() {
  return Call(&sv1::Store::Stub::GetReplicationStatus, sv1::GetReplicationStatusRequest());
}

}  // namespace apogee::broker
