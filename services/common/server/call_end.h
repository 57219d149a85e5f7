// How a streaming call served from a completion queue ends: it finishes
// once (never while a write is in flight: gRPC allows one operation of a
// kind at a time), and its object goes exactly once, by the one reaction
// that finds nothing of it pending with gRPC. WatchStream, QueueBidiStream
// and the server-stream calls (server_stream.h) share this state and the
// two reactions that move it: the Finish's completion and gRPC's notice
// that the call is over.
#pragma once

#include <optional>

#include "absl/synchronization/mutex.h"
#include "grpcpp/support/status.h"
#include "services/common/server/completion_queues.h"

namespace apogee {

// `Stream` is gRPC's async writer or reader-writer (anything with
// Finish(status, tag)); `Owner` the call object. Guarded by the owner's
// lock: the owner calls it under that lock, and its own reactions take it.
template <typename Stream, typename Owner>
class CallEnd {
 public:
  // After each of its reactions, CallEnd calls `owner->*maybe_end` without
  // the lock; that ends the object when TakeEnd says so.
  CallEnd(Stream* stream, absl::Mutex* mu, Owner* owner, void (Owner::*maybe_end)())
      : stream_(stream), mu_(mu), owner_(owner), maybe_end_(maybe_end) {}

  // For AsyncNotifyWhenDone, before the call is requested.
  void* done_tag() { return &done_op_; }

  // A write goes out; WriteDone when its completion comes.
  void WriteStarted() { writing_ = true; }
  // Finishes now if a Finish waited for this write.
  void WriteDone() {
    writing_ = false;
    if (deferred_.has_value()) Finish(*deferred_);
  }

  // Ends the call with `status`; after the write in flight if there is
  // one. The first status wins; later calls do nothing.
  void Finish(const grpc::Status& status) {
    if (finished_) return;
    if (writing_) {
      if (!deferred_.has_value()) deferred_ = status;
      return;
    }
    finished_ = finish_pending_ = true;
    stream_->Finish(status, &finished_op_);
  }

  // True once, when the call is over and gRPC holds nothing of it (no
  // write, no finish pending) and `busy` (what else the owner waits for:
  // a read, the handler's close) is false: then the caller ends the object.
  bool TakeEnd(bool busy = false) {
    if (ended_ || busy || !done_ || writing_ || finish_pending_) return false;
    ended_ = true;
    return true;
  }
  // The call never started (the server shut down before a client came):
  // nothing will come for it, so no reaction may end it later.
  void MarkEnded() { ended_ = true; }

  bool writing() const { return writing_; }
  bool finished() const { return finished_; }
  bool done() const { return done_; }

 private:
  void OnFinished(bool /*ok*/) {
    {
      absl::MutexLock lock(mu_);
      finish_pending_ = false;
    }
    (owner_->*maybe_end_)();
  }
  // The status went out, or the client cancelled or went away. A call not
  // finished yet finishes as CANCELLED (what is written later is dropped;
  // a read or write in flight fails, which ends the owner's loop).
  void OnDone(bool /*ok: always true*/) {
    {
      absl::MutexLock lock(mu_);
      done_ = true;
      Finish(grpc::Status::CANCELLED);
    }
    (owner_->*maybe_end_)();
  }

  Stream* const stream_;
  absl::Mutex* const mu_;
  Owner* const owner_;
  void (Owner::*const maybe_end_)();
  MemberTag<CallEnd> finished_op_{this, &CallEnd::OnFinished};
  MemberTag<CallEnd> done_op_{this, &CallEnd::OnDone};
  std::optional<grpc::Status> deferred_;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_pending_ = false;
  bool done_ = false;
  bool ended_ = false;
};

}  // namespace apogee
