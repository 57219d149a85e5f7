// A bidi stream served from a completion queue, used with blocking Read and
// Write from a thread of the handler's own: for a long-lived stream whose
// logic is written as a loop (the store's replication Follow), without the
// sync API's server threads, which poll like gRPC's callback threads
// (completion_queues.h says why that matters).
#pragma once

#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/sync_stream.h"
#include "services/common/server/completion_queues.h"

namespace apogee {

// Read and Write may run at the same time on two threads (one each), as
// with the sync API; each waits for its operation's tag.
template <typename W, typename R>
class BlockingStream final : public grpc::ServerReaderWriterInterface<W, R> {
 public:
  explicit BlockingStream(grpc::ServerAsyncReaderWriter<W, R>* stream) : stream_(stream) {}

  void SendInitialMetadata() override {
    stream_->SendInitialMetadata(&metadata_);
    metadata_.Wait();
  }
  bool NextMessageSize(uint32_t* size) override {
    *size = UINT32_MAX;  // unknown before the read; gRPC's own limit applies
    return true;
  }
  bool Read(R* message) override {
    stream_->Read(message, &read_);
    return read_.Wait();
  }
  using grpc::internal::WriterInterface<W>::Write;
  bool Write(const W& message, grpc::WriteOptions options) override {
    stream_->Write(message, options, &write_);
    return write_.Wait();
  }

 private:
  grpc::ServerAsyncReaderWriter<W, R>* const stream_;
  WaitableTag metadata_, read_, write_;
};

}  // namespace apogee
