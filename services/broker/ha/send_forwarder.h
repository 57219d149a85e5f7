// Relays v2 SendMessage calls that reach a broker which is not its group's
// writer to the writer. Official clients cache the route they publish to
// (rocketmq-client-nodejs 1.0.8 never refreshes it, and isolates an endpoint
// for good after one failed send), so after a failover they keep dialling the
// endpoints they first saw; QueryRoute lists every member of a group as a
// write target (services/common/rocketmq/v2_route.h), and this relay turns a
// send to any live member into a send to the writer.
//
// During a failover there is no writer for a few seconds: a relayed send is
// held (retried every `retry_interval`) until a writer answers or this broker
// becomes the writer itself, up to `max_hold` and never past the call's
// deadline, so a client whose request timeout outlasts the failover sees no
// error at all.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apache/rocketmq/v2/service.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "services/broker/ha/role_manager.h"
#include "services/broker/ha/writer_lookup.h"
#include "services/broker/route/registrar.h"
#include "services/common/concurrency/executor.h"

namespace apogee::broker::ha {

// Marks a relayed call; a broker never relays a call that carries it (one
// hop at most, no loops while routes disagree).
inline constexpr char kForwardedByHeader[] = "x-apogee-forwarded-by";

struct ForwardOptions {
  // How long a writer found through the NameServers is trusted.
  absl::Duration lookup_ttl = absl::Seconds(1);
  absl::Duration retry_interval = absl::Milliseconds(100);
  // The longest a send waits for a writer (the default lease is 3 s).
  // Zero without a controller: static roles never promote anyone.
  absl::Duration max_hold = absl::Seconds(10);
};

// Thread-safe.
class SendForwarder {
 public:
  enum class Outcome {
    kRelayed,       // the writer answered; the response is its answer
    kBecameWriter,  // this broker is the writer now: store the send here
  };
  using Done = std::function<void(absl::StatusOr<Outcome>)>;

  // `self`: this broker (its group, and the id FindWriter must skip).
  // Writer lookups (GetClusterInfo on `nameservers`) run on `executor` or
  // on the forwarder's own retry thread, never on gRPC threads.
  SendForwarder(BrokerIdentity self, std::vector<std::string> nameservers, const RoleManager* roles,
                Executor* executor, ForwardOptions options = {});
  ~SendForwarder();

  // Whether `context` is a call another broker relayed.
  static bool WasForwarded(const grpc::ServerContextBase& context);

  // Relays `request` (its x-mq-* and authorization headers, its deadline)
  // to the writer; `done` once, with an Outcome or why not (no writer within
  // the hold). `context`, `request` and `response` must outlive `done`.
  void Forward(grpc::ServerContextBase* context,
               const apache::rocketmq::v2::SendMessageRequest* request,
               apache::rocketmq::v2::SendMessageResponse* response, Done done);
  // The same for EndTransaction (a slave relays it to the writer).
  void Forward(grpc::ServerContextBase* context,
               const apache::rocketmq::v2::EndTransactionRequest* request,
               apache::rocketmq::v2::EndTransactionResponse* response, Done done);

  void SetClientEndpoint(const std::string& endpoint);

 private:
  struct Call;
  void Start(grpc::ServerContextBase* context, std::shared_ptr<Call> call, Done done);
  // One try: local writer, else relay to the writer found, else hold.
  void Attempt(std::shared_ptr<Call> call);
  void Hold(std::shared_ptr<Call> call, const absl::Status& why);
  void RetryLoop();
  absl::StatusOr<std::string> WriterEndpoint(bool fresh);
  apache::rocketmq::v2::MessagingService::Stub* StubFor(const std::string& endpoint);

  const BrokerIdentity self_;
  const RoleManager* const roles_;
  Executor* const executor_;
  const ForwardOptions options_;
  WriterLookup writers_;

  absl::Mutex mu_;
  std::string client_endpoint_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> writer_ ABSL_GUARDED_BY(mu_);
  absl::Time looked_up_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::map<std::string, std::unique_ptr<apache::rocketmq::v2::MessagingService::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::shared_ptr<Call>> held_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread retry_thread_;
};

}  // namespace apogee::broker::ha
