// gRPC's typed bidi reactors see a client message that does not parse as a
// failed read, exactly like the client's half-close (grpcpp's
// CallOpRecvMessage), so a stream fed garbage would end with OK. A reactor
// derived from ParsingBidiReactor reads raw bytes and parses them itself:
// OnRequest(true) for a parsed request, OnRequest(false) when the client's
// reads are over, OnUnparsed(error) for bytes that are not a Request. The
// service registers the method raw in its constructor:
//   MarkMethodRawCallback(MethodIndex("pkg.Service.Method"),
//                         RawBidiHandler([this](auto* c) { return Open(c); }));
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace apogee {

// The index grpc::Service uses for `full_method_name`
// ("apache.rocketmq.v2.MessagingService.Telemetry"); aborts when the method
// is not in the generated descriptor pool (a programming error).
int MethodIndex(absl::string_view full_method_name);

using RawBidiReactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// The handler for MarkMethodRawCallback of a bidi method served by `open`.
inline grpc::internal::MethodHandler* RawBidiHandler(
    std::function<RawBidiReactor*(grpc::CallbackServerContext*)> open) {
  return new grpc::internal::CallbackBidiHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
      std::move(open));
}

// Thread-safety as grpc::ServerBidiReactor: one read and one write in flight.
template <typename Request, typename Response>
class ParsingBidiReactor : public RawBidiReactor {
 protected:
  // Reads the next request into request().
  void ReadRequest() { StartRead(&read_buffer_); }

  // Writes `response` (serialized now, so it need not outlive the call).
  void WriteResponse(const Response& response) {
    write_buffer_.Clear();
    bool own_buffer = false;
    grpc::Status serialized =
        grpc::SerializationTraits<Response>::Serialize(response, &write_buffer_, &own_buffer);
    (void)serialized;  // serializing a valid in-memory message cannot fail
    StartWrite(&write_buffer_);
  }

  Request& request() { return request_; }

  // A request is in request() (ok), or reads are over (!ok): the client
  // half-closed, cancelled or went away.
  virtual void OnRequest(bool ok) = 0;
  // The client sent bytes that are not a Request; `error` says which.
  virtual void OnUnparsed(std::string error) = 0;

 private:
  void OnReadDone(bool ok) final {
    if (!ok) return OnRequest(false);
    ++reads_;
    const size_t bytes = read_buffer_.Length();
    request_.Clear();
    if (!grpc::SerializationTraits<Request>::Deserialize(&read_buffer_, &request_).ok()) {
      return OnUnparsed(absl::StrCat("message ", reads_, " of the stream (", bytes,
                                     " bytes) does not parse as ",
                                     Request::descriptor()->full_name()));
    }
    OnRequest(true);
  }

  grpc::ByteBuffer read_buffer_;
  grpc::ByteBuffer write_buffer_;
  Request request_;
  int64_t reads_ = 0;
};

}  // namespace apogee
