// grpc_hop_bench: what one gRPC unary round trip costs on this machine with
// the two server/client API styles, one call in flight, 1 KiB echo over
// loopback TCP. It isolates the hop the broker pays twice per send (client →
// broker, broker → store) from our own code (docs/benchmarks.md, issue 14):
//
//   callback: CallbackGenericService + GenericStub::UnaryCall, the style the
//             broker, the store and the SDK use. Debian's gRPC 1.51 runs each
//             completion on a `nexting_thread` of its callback-alternative
//             completion queue (a futex hand-off per completion).
//   cq:       AsyncGenericService on a ServerCompletionQueue with one thread
//             that polls and runs the handler inline, and a client that
//             polls its own CompletionQueue on the calling thread.
//   cq_cq_with_callback_threads: the same, in a process that also made one
//             callback call, so gRPC's callback threads exist and wait in
//             its poller as well (what a process that serves or calls
//             anything else on the callback API looks like).
//   BM_PipelinedUnary/N: cq against cq with N calls in flight on one channel
//             (64: the official clients' shape).
//
// Besides time per call, each benchmark reports CPU µs and context switches
// per call for the whole process (client and server share it).
//
//   apogee-grpc-hop-bench [--benchmark_min_time=2]
#include <benchmark/benchmark.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <sys/resource.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"

namespace {

constexpr char kMethod[] = "/apogee.bench.Echo/Call";

grpc::ByteBuffer Payload() {
  static const std::string body(1024, 'x');
  grpc::Slice slice(body);
  return grpc::ByteBuffer(&slice, 1);
}

// Process CPU (user + system) and context switches, for per-call figures.
struct Usage {
  double cpu_us = 0;
  double switches = 0;
  static Usage Now() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const auto us = [](const timeval& t) { return t.tv_sec * 1e6 + t.tv_usec; };
    return {us(u.ru_utime) + us(u.ru_stime), static_cast<double>(u.ru_nvcsw + u.ru_nivcsw)};
  }
};

// The process's CPU and context switches per call between two readings.
void ReportPerCall(benchmark::State& state, const Usage& before, const Usage& after, double calls) {
  state.counters["cpu_us_per_call"] = (after.cpu_us - before.cpu_us) / calls;
  state.counters["switches_per_call"] = (after.switches - before.switches) / calls;
}

void ShutdownAndDrain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

// Echoes every call from a reactor (the callback API).
class CallbackEcho : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() { StartRead(&buffer_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(grpc::Status::OK);
        StartWriteAndFinish(&buffer_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      grpc::ByteBuffer buffer_;
    };
    return new Reactor;
  }
};

// Echoes every call on one thread polling a ServerCompletionQueue; each call
// is a small state machine whose steps are the completion-queue tags.
class CqEcho {
 public:
  explicit CqEcho(grpc::ServerBuilder& builder) {
    builder.RegisterAsyncGenericService(&service_);
    cq_ = builder.AddCompletionQueue();
  }
  void Start() {
    new Call(&service_, cq_.get());
    thread_ = std::thread([this] {
      void* tag = nullptr;
      bool ok = false;
      while (cq_->Next(&tag, &ok)) static_cast<Call*>(tag)->Step(ok);
    });
  }
  void Stop() {
    cq_->Shutdown();
    thread_.join();
  }

 private:
  class Call {
   public:
    Call(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq)
        : service_(service), cq_(cq), stream_(&context_) {
      service_->RequestCall(&context_, &stream_, cq_, cq_, this);
    }
    void Step(bool ok) {
      switch (state_) {
        case State::kRequested:
          if (!ok) return delete this;  // shutting down
          new Call(service_, cq_);      // accept the next call meanwhile
          state_ = State::kRead;
          return stream_.Read(&buffer_, this);
        case State::kRead:
          state_ = State::kFinished;
          if (!ok) return stream_.Finish(grpc::Status::OK, this);
          return stream_.WriteAndFinish(buffer_, grpc::WriteOptions(), grpc::Status::OK, this);
        case State::kFinished:
          return delete this;
      }
    }

   private:
    enum class State { kRequested, kRead, kFinished };
    grpc::AsyncGenericService* service_;
    grpc::ServerCompletionQueue* cq_;
    grpc::GenericServerContext context_;
    grpc::GenericServerAsyncReaderWriter stream_;
    grpc::ByteBuffer buffer_;
    State state_ = State::kRequested;
  };

  grpc::AsyncGenericService service_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::thread thread_;
};

enum class Api { kCallback, kCq };

// A server of the given style on 127.0.0.1:<free port>, stopped on destruction.
class EchoServer {
 public:
  explicit EchoServer(Api api) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    if (api == Api::kCallback) {
      builder.RegisterCallbackGenericService(&callback_);
    } else {
      cq_ = std::make_unique<CqEcho>(builder);
    }
    server_ = builder.BuildAndStart();
    if (cq_) cq_->Start();
  }
  ~EchoServer() {
    server_->Shutdown();
    if (cq_) cq_->Stop();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool ok() const { return server_ != nullptr && port_ != 0; }

 private:
  int port_ = 0;
  CallbackEcho callback_;
  std::unique_ptr<CqEcho> cq_;
  std::unique_ptr<grpc::Server> server_;
};

bool CallbackCall(grpc::GenericStub& stub, const grpc::ByteBuffer& request) {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, kMethod, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return status.ok();
}

bool CqCall(grpc::GenericStub& stub, grpc::CompletionQueue& cq, const grpc::ByteBuffer& request) {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  auto call = stub.PrepareUnaryCall(&context, kMethod, request, &cq);
  call->StartCall();
  call->Finish(&response, &status, &context);
  void* tag = nullptr;
  bool ok = false;
  return cq.Next(&tag, &ok) && ok && tag == &context && status.ok();
}

void BM_UnaryRoundTrip(benchmark::State& state, Api server_api, Api client_api,
                       bool idle_callback_channel = false) {
  EchoServer server(server_api);
  if (!server.ok()) return state.SkipWithError("server did not start");
  grpc::GenericStub stub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  const grpc::ByteBuffer request = Payload();
  // A channel that made one callback call keeps gRPC's callback threads
  // alive (they poll too), as in a process that uses the callback API
  // anywhere else.
  std::unique_ptr<grpc::GenericStub> idle;
  if (idle_callback_channel) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    idle = std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(server.address(), grpc::InsecureChannelCredentials(), args));
    if (!CallbackCall(*idle, request)) return state.SkipWithError("idle call failed");
  }
  const auto call = [&] {
    return client_api == Api::kCallback ? CallbackCall(stub, request) : CqCall(stub, cq, request);
  };
  for (int i = 0; i < 100; ++i) {  // connect and warm up
    if (!call()) return state.SkipWithError("echo call failed");
  }
  const Usage before = Usage::Now();
  for (auto _ : state) {
    if (!call()) return state.SkipWithError("echo call failed");
  }
  ReportPerCall(state, before, Usage::Now(), static_cast<double>(state.iterations()));
  ShutdownAndDrain(cq);
}

// Unary calls kept `in_flight` at a time on one channel (the official
// clients' shape: one message per SendMessage, 64 in flight) against the
// completion-queue echo: what gRPC alone costs per call when calls overlap,
// the floor under the broker's official-shape figure. One client thread
// polls the client queue and starts a new call for each one answered.
void BM_PipelinedUnary(benchmark::State& state) {
  const int in_flight = static_cast<int>(state.range(0));
  EchoServer server(Api::kCq);
  if (!server.ok()) return state.SkipWithError("server did not start");
  grpc::GenericStub stub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  const grpc::ByteBuffer request = Payload();
  for (int i = 0; i < 100; ++i) {  // connect and warm up
    if (!CqCall(stub, cq, request)) return state.SkipWithError("echo call failed");
  }
  struct Pending {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call;
  };
  const auto start = [&] {
    auto* pending = new Pending;
    pending->call = stub.PrepareUnaryCall(&pending->context, kMethod, request, &cq);
    pending->call->StartCall();
    pending->call->Finish(&pending->response, &pending->status, pending);
  };
  int outstanding = 0;
  bool failed = false;
  const Usage before = Usage::Now();
  int64_t answered = 0;
  for (auto _ : state) {
    while (outstanding < in_flight) {
      start();
      ++outstanding;
    }
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    auto* pending = static_cast<Pending*>(tag);
    failed |= !ok || !pending->status.ok();
    delete pending;
    --outstanding;
    ++answered;
  }
  const Usage after = Usage::Now();
  while (outstanding > 0) {  // drain what is still in flight
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    delete static_cast<Pending*>(tag);
    --outstanding;
  }
  if (failed) return state.SkipWithError("echo call failed");
  const double calls = static_cast<double>(answered);
  ReportPerCall(state, before, after, calls);
  state.counters["calls_per_s"] = benchmark::Counter(calls, benchmark::Counter::kIsRate);
  ShutdownAndDrain(cq);
}

BENCHMARK_CAPTURE(BM_UnaryRoundTrip, callback_server_callback_client, Api::kCallback,
                  Api::kCallback)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_UnaryRoundTrip, cq_server_callback_client, Api::kCq, Api::kCallback)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_UnaryRoundTrip, callback_server_cq_client, Api::kCallback, Api::kCq)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_UnaryRoundTrip, cq_server_cq_client, Api::kCq, Api::kCq)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_UnaryRoundTrip, cq_cq_with_callback_threads, Api::kCq, Api::kCq, true)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PipelinedUnary)->Arg(1)->Arg(64)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
