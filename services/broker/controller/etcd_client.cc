#include "services/broker/controller/etcd_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "etcd/rpc.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "services/common/status/grpc_status.h"

namespace apogee::controller {

struct EtcdClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
};

struct EtcdClient::Endpoint {
  std::string address;
  absl::Mutex mu;
  std::shared_ptr<Stubs> stubs ABSL_GUARDED_BY(mu);
  absl::Time created ABSL_GUARDED_BY(mu);
};

namespace {

std::shared_ptr<grpc::Channel> CreateEtcdChannel(
    const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  // Reconnect quickly after etcd restarts (gRPC's default backoff grows to
  // 120 s). No keepalive pings: etcd refuses pings without streams, and every
  // call has a deadline anyway.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1'000);
  return grpc::CreateCustomChannel(
      address, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
}

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv) {
  EtcdKeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

void ToProto(const EtcdOp& op, etcdserverpb::RequestOp* out) {
  switch (op.kind) {
    case EtcdOp::Kind::kPut: {
      auto* put = out->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case EtcdOp::Kind::kDelete:
      out->mutable_request_delete_range()->set_key(op.key);
      break;
  }
}

}  // namespace

EtcdCompare EtcdCompare::CreateRevisionEquals(std::string key, int64_t revision) {
  EtcdCompare c;
  c.target = Target::kCreateRevision;
  c.key = std::move(key);
  c.revision = revision;
  return c;
}

EtcdCompare EtcdCompare::ValueEquals(std::string key, std::string value) {
  EtcdCompare c;
  c.target = Target::kValue;
  c.key = std::move(key);
  c.value = std::move(value);
  return c;
}

EtcdOp EtcdOp::Put(std::string key, std::string value, int64_t lease) {
  EtcdOp op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

EtcdOp EtcdOp::Delete(std::string key) {
  EtcdOp op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  return op;
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: every key
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const std::string& endpoints, absl::Duration call_timeout,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto client = std::unique_ptr<EtcdClient>(new EtcdClient());
  client->call_timeout_ = call_timeout;
  client->credentials_ = std::move(credentials);
  for (absl::string_view part : absl::StrSplit(endpoints, ';', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    const size_t colon = part.rfind(':');
    if (colon == absl::string_view::npos || colon == 0 || colon + 1 == part.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint \"", part, "\" in \"", endpoints, "\" is not HOST:PORT"));
    }
    auto endpoint = std::make_unique<Endpoint>();
    endpoint->address = std::string(part);
    client->StubsOf(*endpoint, /*reset=*/true);
    client->addresses_.push_back(endpoint->address);
    client->endpoints_.push_back(std::move(endpoint));
  }
  if (client->endpoints_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no etcd endpoint in \"", endpoints,
                                                   "\" (expected HOST:PORT[;HOST:PORT...])"));
  }
  return client;
}

EtcdClient::~EtcdClient() = default;

std::shared_ptr<EtcdClient::Stubs> EtcdClient::StubsOf(Endpoint& endpoint, bool reset) {
  absl::MutexLock lock(&endpoint.mu);
  const absl::Time now = absl::Now();
  if (endpoint.stubs == nullptr || (reset && now - endpoint.created >= absl::Seconds(1))) {
    auto stubs = std::make_shared<Stubs>();
    stubs->channel = CreateEtcdChannel(endpoint.address, credentials_);
    stubs->kv = etcdserverpb::KV::NewStub(stubs->channel);
    stubs->lease = etcdserverpb::Lease::NewStub(stubs->channel);
    stubs->watch = etcdserverpb::Watch::NewStub(stubs->channel);
    endpoint.stubs = std::move(stubs);
    endpoint.created = now;
  }
  return endpoint.stubs;
}

void EtcdClient::SetFaultForTesting(absl::Status fault) {
  absl::MutexLock lock(&fault_mu_);
  fault_ = std::move(fault);
}

template <typename Rpc>
absl::Status EtcdClient::Call(const char* method, absl::Duration max_wait, Rpc rpc) {
  {
    absl::MutexLock lock(&fault_mu_);
    if (!fault_.ok()) return fault_;
  }
  const absl::Duration wait = std::min(call_timeout_, max_wait);
  if (wait <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(absl::StrCat("etcd ", method, ": no time left to call"));
  }
  const absl::Time deadline = absl::Now() + wait;
  const size_t n = endpoints_.size();
  const size_t first = preferred_.load();
  std::string errors;
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (first + i) % n;
    Endpoint& endpoint = *endpoints_[index];
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    const grpc::Status status = rpc(*StubsOf(endpoint, /*reset=*/false), &context);
    if (status.ok()) {
      preferred_.store(index);
      return absl::OkStatus();
    }
    absl::StrAppend(&errors, errors.empty() ? "" : "; ", endpoint.address, ": ",
                    status.error_message());
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      StubsOf(endpoint, /*reset=*/true);
    }
    // Only UNAVAILABLE says "this endpoint is down, another may answer".
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || absl::Now() >= deadline) {
      return absl::Status(FromGrpcStatus(status).code(),
                          absl::StrCat("etcd ", method, " failed (", errors, ")"));
    }
  }
  return absl::UnavailableError(
      absl::StrCat("etcd ", method, " failed on all ", n, " endpoints (", errors, ")"));
}

absl::StatusOr<EtcdRange> EtcdClient::Range(const std::string& key, const std::string& range_end,
                                            absl::Duration max_wait) {
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  request.set_range_end(range_end);
  etcdserverpb::RangeResponse response;
  absl::Status status = Call("Range", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
    return e.kv->Range(context, request, &response);
  });
  if (!status.ok()) return status;
  EtcdRange range;
  range.revision = response.header().revision();
  for (const mvccpb::KeyValue& kv : response.kvs()) range.kvs.push_back(FromProto(kv));
  return range;
}

absl::StatusOr<std::optional<EtcdKeyValue>> EtcdClient::Get(const std::string& key,
                                                            absl::Duration max_wait) {
  absl::StatusOr<EtcdRange> range = Range(key, "", max_wait);
  if (!range.ok()) return range.status();
  if (range->kvs.empty()) return std::optional<EtcdKeyValue>();
  return std::optional<EtcdKeyValue>(std::move(range->kvs.front()));
}

absl::StatusOr<EtcdRange> EtcdClient::GetPrefix(const std::string& prefix,
                                                absl::Duration max_wait) {
  return Range(prefix, PrefixRangeEnd(prefix), max_wait);
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key, const std::string& value,
                                        int64_t lease, absl::Duration max_wait) {
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  absl::Status status = Call("Put", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
    return e.kv->Put(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.header().revision();
}

absl::StatusOr<int64_t> EtcdClient::DeleteRange(const std::string& key,
                                                const std::string& range_end,
                                                absl::Duration max_wait) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(key);
  request.set_range_end(range_end);
  etcdserverpb::DeleteRangeResponse response;
  absl::Status status = Call("DeleteRange", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
    return e.kv->DeleteRange(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.deleted();
}

absl::StatusOr<int64_t> EtcdClient::Delete(const std::string& key, absl::Duration max_wait) {
  return DeleteRange(key, "", max_wait);
}

absl::StatusOr<int64_t> EtcdClient::DeletePrefix(const std::string& prefix,
                                                 absl::Duration max_wait) {
  return DeleteRange(prefix, PrefixRangeEnd(prefix), max_wait);
}

absl::StatusOr<bool> EtcdClient::Txn(const std::vector<EtcdCompare>& compares,
                                     const std::vector<EtcdOp>& success,
                                     const std::vector<EtcdOp>& failure, absl::Duration max_wait) {
  etcdserverpb::TxnRequest request;
  for (const EtcdCompare& c : compares) {
    auto* compare = request.add_compare();
    compare->set_key(c.key);
    compare->set_result(etcdserverpb::Compare::EQUAL);
    switch (c.target) {
      case EtcdCompare::Target::kCreateRevision:
        compare->set_target(etcdserverpb::Compare::CREATE);
        compare->set_create_revision(c.revision);
        break;
      case EtcdCompare::Target::kValue:
        compare->set_target(etcdserverpb::Compare::VALUE);
        compare->set_value(c.value);
        break;
    }
  }
  for (const EtcdOp& op : success) ToProto(op, request.add_success());
  for (const EtcdOp& op : failure) ToProto(op, request.add_failure());
  etcdserverpb::TxnResponse response;
  absl::Status status = Call("Txn", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
    return e.kv->Txn(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.succeeded();
}

absl::StatusOr<EtcdLease> EtcdClient::LeaseGrant(absl::Duration ttl, absl::Duration max_wait) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)))));
  etcdserverpb::LeaseGrantResponse response;
  absl::Status status = Call("LeaseGrant", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
    return e.lease->LeaseGrant(context, request, &response);
  });
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd LeaseGrant(TTL ", request.ttl(), " s) refused: ", response.error()));
  }
  return EtcdLease{response.id(), absl::Seconds(response.ttl())};
}

absl::StatusOr<absl::Duration> EtcdClient::LeaseKeepAlive(int64_t lease, absl::Duration max_wait) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse response;
  // LeaseKeepAlive is a stream in etcd's API; one short stream per renewal
  // keeps a deadline on every renewal.
  absl::Status status =
      Call("LeaseKeepAlive", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
        auto stream = e.lease->LeaseKeepAlive(context);
        if (!stream->Write(request) || !stream->Read(&response)) {
          context->TryCancel();
          grpc::Status finished = stream->Finish();
          return finished.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                              "keepalive stream closed without an answer")
                               : finished;
        }
        stream->WritesDone();
        grpc::Status finished = stream->Finish();
        // The answer arrived; how the stream closes does not matter.
        (void)finished;
        return grpc::Status::OK;
      });
  if (!status.ok()) return status;
  if (response.ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("etcd lease ", lease, " expired or was revoked"));
  }
  return absl::Seconds(response.ttl());
}

absl::Status EtcdClient::LeaseRevoke(int64_t lease, absl::Duration max_wait) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseRevokeResponse response;
  return Call("LeaseRevoke", max_wait, [&](Stubs& e, grpc::ClientContext* context) {
    return e.lease->LeaseRevoke(context, request, &response);
  });
}

std::unique_ptr<EtcdWatch> EtcdClient::WatchPrefix(
    const std::string& prefix, int64_t start_revision,
    std::function<void(const std::vector<EtcdEvent>&)> on_events,
    std::function<void(const absl::Status&)> on_end) {
  auto watch = std::unique_ptr<EtcdWatch>(new EtcdWatch());
  watch->context_ = std::make_unique<grpc::ClientContext>();
  Endpoint& target = *endpoints_[preferred_.load() % endpoints_.size()];
  std::shared_ptr<Stubs> stubs = StubsOf(target, /*reset=*/false);
  const std::string address = target.address;
  EtcdWatch* w = watch.get();
  absl::Status fault;
  {
    absl::MutexLock lock(&fault_mu_);
    fault = fault_;
  }
  watch->thread_ = std::thread([w, stubs, address, prefix, start_revision, fault,
                                on_events = std::move(on_events), on_end = std::move(on_end)] {
    absl::Status result = fault;
    if (result.ok()) {
      auto stream = stubs->watch->Watch(w->context_.get());
      etcdserverpb::WatchRequest request;
      auto* create = request.mutable_create_request();
      create->set_key(prefix);
      create->set_range_end(PrefixRangeEnd(prefix));
      create->set_start_revision(start_revision);
      etcdserverpb::WatchResponse response;
      if (stream->Write(request)) {
        while (stream->Read(&response)) {
          if (response.canceled()) {
            result = absl::AbortedError(absl::StrCat(
                "etcd watch of \"", prefix, "\" canceled: ", response.cancel_reason(),
                response.compact_revision() > 0
                    ? absl::StrCat(" (compacted up to ", response.compact_revision(), ")")
                    : ""));
            w->context_->TryCancel();
            break;
          }
          if (response.events().empty()) continue;
          std::vector<EtcdEvent> events;
          for (const mvccpb::Event& e : response.events()) {
            EtcdEvent event;
            event.type = e.type() == mvccpb::Event::DELETE ? EtcdEvent::Type::kDelete
                                                           : EtcdEvent::Type::kPut;
            event.kv = FromProto(e.kv());
            events.push_back(std::move(event));
          }
          on_events(events);
        }
      }
      grpc::Status finished = stream->Finish();
      if (result.ok()) {
        result = finished.ok()
                     ? absl::UnavailableError(
                           absl::StrCat("etcd watch of \"", prefix, "\" on ", address, " ended"))
                     : absl::Status(FromGrpcStatus(finished).code(),
                                    absl::StrCat("etcd watch of \"", prefix, "\" on ", address,
                                                 " ended: ", finished.error_message()));
      }
    }
    {
      absl::MutexLock lock(&w->mu_);
      w->done_ = true;
      w->status_ = result;
    }
    on_end(result);
  });
  return watch;
}

EtcdWatch::~EtcdWatch() {
  context_->TryCancel();
  if (thread_.joinable()) thread_.join();
}

bool EtcdWatch::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

absl::Status EtcdWatch::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace apogee::controller
