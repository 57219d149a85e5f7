#include "services/broker/route/registrar.h"

#include <cstdio>

#include "apogee/nameserver/v1/nameserver.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "services/common/client/channel.h"

namespace apogee::broker {

namespace v1 = ::apogee::nameserver::v1;

struct Registrar::Peer {
  std::string address;
  std::thread thread;
  // The live session's context, so Stop() can cancel a blocked Read.
  grpc::ClientContext* context ABSL_GUARDED_BY(mu) = nullptr;
  bool registered ABSL_GUARDED_BY(mu) = false;
  int64_t sent_version ABSL_GUARDED_BY(mu) = -1;
  absl::Mutex mu;
};

Registrar::Registrar(BrokerIdentity identity, std::vector<std::string> nameservers,
                     absl::Duration interval, TopicSource topics)
    : identity_(std::move(identity)),
      interval_(interval),
      topics_(std::move(topics)),
      // Start versions at the wall clock so a restarted broker never reuses
      // the version a NameServer still holds from its previous life.
      data_version_(absl::ToUnixMicros(absl::Now())) {
  for (std::string& address : nameservers) {
    auto peer = std::make_unique<Peer>();
    peer->address = std::move(address);
    peers_.push_back(std::move(peer));
  }
}

Registrar::~Registrar() { Stop(); }

void Registrar::Start() {
  for (auto& peer : peers_) {
    Peer* p = peer.get();
    p->thread = std::thread([this, p] { Run(p); });
  }
}

void Registrar::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (auto& peer : peers_) {
    {
      absl::MutexLock lock(&peer->mu);
      if (peer->context != nullptr) peer->context->TryCancel();
    }
    if (peer->thread.joinable()) peer->thread.join();
  }
}

void Registrar::TopicsChanged() {
  absl::MutexLock lock(&mu_);
  ++data_version_;
}

void Registrar::SetRole(int64_t epoch, bool writer) {
  absl::MutexLock lock(&mu_);
  epoch_ = epoch;
  writer_ = writer;
  ++data_version_;  // wakes every session to send it now
}

int Registrar::RegisteredCount() const {
  int count = 0;
  for (const Link& link : Links()) count += link.registered ? 1 : 0;
  return count;
}

std::vector<Registrar::Link> Registrar::Links() const {
  std::vector<Link> links;
  for (const auto& peer : peers_) {
    absl::MutexLock lock(&peer->mu);
    links.push_back({peer->address, peer->registered});
  }
  return links;
}

v1::BrokerRegistration Registrar::Build(bool full, int64_t version) const {
  v1::BrokerRegistration r;
  r.set_cluster_name(identity_.cluster_name);
  r.set_broker_name(identity_.broker_name);
  r.set_broker_id(identity_.broker_id);
  r.set_client_endpoint(identity_.client_endpoint);
  r.set_ha_endpoint(identity_.ha_endpoint);
  r.set_auto_create_queues(identity_.auto_create_queues);
  r.set_data_version(version);
  r.set_full(full);
  {
    absl::MutexLock lock(&mu_);
    r.set_epoch(epoch_);
    r.set_writer(writer_);
  }
  // Expire a silent broker after three missed refreshes.
  const int64_t expiry_s = std::max<int64_t>(1, absl::ToInt64Seconds(interval_ * 3));
  r.mutable_expiry()->set_seconds(std::min<int64_t>(expiry_s, 3600));
  if (full) {
    for (v1::TopicConfig& topic : topics_()) *r.add_topics() = std::move(topic);
  }
  return r;
}

void Registrar::Run(Peer* peer) {
  auto stub = v1::NameServer::NewStub(CreateApogeeChannel(peer->address));
  absl::Duration backoff = absl::Milliseconds(200);
  auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };

  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    grpc::ClientContext context;
    {
      absl::MutexLock lock(&peer->mu);
      peer->context = &context;
      peer->sent_version = -1;
    }
    if (decorate_) decorate_(&context);
    auto stream = stub->BrokerSession(&context);
    bool need_full = true;
    std::string error;
    while (true) {
      int64_t version;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) break;
        version = data_version_;
      }
      int64_t sent;
      {
        absl::MutexLock lock(&peer->mu);
        sent = peer->sent_version;
      }
      const bool full = need_full || version != sent;
      v1::BrokerSessionRequest request;
      *request.mutable_registration() = Build(full, version);
      v1::BrokerSessionResponse response;
      if (!stream->Write(request) || !stream->Read(&response)) {
        error = "session stream broke";
        break;
      }
      need_full = response.full_registration_required();
      {
        absl::MutexLock lock(&peer->mu);
        peer->registered = !need_full;
        if (full && !need_full) peer->sent_version = version;
      }
      if (need_full) continue;
      backoff = absl::Milliseconds(200);
      // Sleep until the next refresh, a topic change, or Stop().
      absl::MutexLock lock(&mu_);
      auto wake = [this, version]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || data_version_ != version;
      };
      mu_.AwaitWithTimeout(absl::Condition(&wake), interval_);
    }
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    {
      absl::MutexLock lock(&peer->mu);
      peer->context = nullptr;
      peer->registered = false;
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    std::fprintf(stderr, "event=nameserver_session_lost nameserver=%s error=\"%s\" retry_in=%s\n",
                 peer->address.c_str(),
                 status.ok() ? error.c_str() : status.error_message().c_str(),
                 absl::FormatDuration(backoff).c_str());
    mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

}  // namespace apogee::broker
