// apogee.broker.v1.PushConsumer on the broker: the gRPC adapter of push
// delivery. Each Consume stream, served from the server's completion queue
// (bidi_stream.h), turns requests into PushSession calls (delivery/) and
// writes what the session sends; the session does the work on the worker
// executor, so the queue's poller never blocks.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "apogee/broker/v1/push.grpc.pb.h"
#include "services/broker/delivery/push_session.h"
#include "services/broker/limits/stream_limits.h"
#include "services/common/auth/authenticator.h"
#include "services/common/server/bidi_stream.h"
#include "services/common/server/completion_queues.h"

namespace apogee::broker {

// Thread-safe.
class PushService final
    : public pushv1::PushConsumer::WithRawMethod_Consume<pushv1::PushConsumer::Service>,
      public CompletionQueueUser {
 public:
  // Consume is served raw, so a request that does not parse ends its stream
  // with INVALID_ARGUMENT instead of looking like the client's half-close
  // (see services/common/server/bidi_stream.h).
  // `auth` (--auth; null: none): a stream is authenticated at open and its
  // subscription needs sub on the group and the topic.
  // `streams`: open Consume streams in total (checked at open) and per
  // Subscribe.client_id (checked at subscribe); past either the stream ends
  // with RESOURCE_EXHAUSTED naming the flag.
  PushService(PushDeps deps, PushLimits limits, const auth::Authenticator* auth = nullptr,
              const StreamLimits& streams = StreamLimits());

  // Ends every open stream with UNAVAILABLE, so consumers reconnect at once
  // instead of waiting for the server's shutdown grace.
  void Shutdown();

  void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) override;
  void Detach() override;

 private:
  class Stream;
  // Posts the next call for a client to take.
  void Accept();
  void Opened(Stream* stream, std::weak_ptr<Stream> weak);
  void Closed(Stream* stream);

  const PushDeps deps_;
  const PushLimits limits_;
  const auth::Authenticator* const auth_;
  StreamCounter counter_;
  grpc::ServerCompletionQueue* queue_ = nullptr;  // set by Attach
  LiveCalls calls_;
  absl::Mutex mu_;
  std::map<Stream*, std::weak_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apogee::broker
