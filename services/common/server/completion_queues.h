// Completion queues shared by a process's hot calls.
//
// Debian's gRPC 1.51 runs every callback-API completion through its
// "callback alternative" completion queue: the poller queues the event and
// wakes another thread to run it, several thread hand-offs per call. On a
// completion queue the thread that polls runs the completion itself, and
// when one call's answer needs another call (the broker's SendMessage needs
// a store append), running both on the same queue lets the thread that
// reads the store's answer finish the client's call (docs/benchmarks.md,
// "Completion queues end to end").
//
// GrpcServer owns the queues (only a ServerCompletionQueue can take
// incoming calls, and a client call may use one too) and one polling thread
// per queue; what uses them is a CompletionQueueUser.
#pragma once

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/completion_queue.h"

namespace apogee {

// What a completion-queue event runs: every tag given to a queue polled by
// PollCompletionQueue is one. Proceed runs on the polling thread.
class CompletionTag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~CompletionTag() = default;
};

// A tag that runs one reaction (a member function) of a call object.
template <typename Call>
class MemberTag final : public CompletionTag {
 public:
  MemberTag(Call* call, void (Call::*react)(bool)) : call_(call), react_(react) {}
  void Proceed(bool ok) override { (call_->*react_)(ok); }

 private:
  Call* const call_;
  void (Call::*const react_)(bool);
};

// A tag a thread waits for (blocking reads and writes, a Finish).
class WaitableTag final : public CompletionTag {
 public:
  void Proceed(bool ok) override {
    absl::MutexLock lock(&mu_);
    ok_ = ok;
    done_ = true;
  }
  // The event's ok; the tag can be given to the queue again after.
  bool Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    done_ = false;
    return ok_;
  }

 private:
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool ok_ ABSL_GUARDED_BY(mu_) = false;
};

// Counts a service's live call objects: Detach waits for none to be left,
// since each may still have a tag on a queue.
class LiveCalls {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  void Remove() {
    absl::MutexLock lock(&mu_);
    --count_;
  }
  void AwaitNone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* count) { return *count == 0; }, &count_));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// Whether this thread polls a completion queue (PollCompletionQueue). A
// poller must never wait for a tag of its own queue: only it could deliver
// it.
inline thread_local bool polling_completion_queue = false;

// Runs each event's tag until the queue is shut down and drained.
inline void PollCompletionQueue(grpc::CompletionQueue* queue) {
  polling_completion_queue = true;
  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Proceed(ok);
  polling_completion_queue = false;
}

// Something that puts work on a GrpcServer's completion queues: a service
// with methods served from them (async_unary.h), or a client whose calls
// should run on the same threads (the broker's store client).
class CompletionQueueUser {
 public:
  virtual ~CompletionQueueUser() = default;
  // Called once, after the server started and before it takes calls.
  virtual void Attach(const std::vector<grpc::ServerCompletionQueue*>& queues) = 0;
  // Called after gRPC's Shutdown, while the pollers still run. Returns once
  // none of its tags is pending on the queues; it gives them nothing more
  // (a tag given to a queue after its shutdown aborts the process).
  virtual void Detach() = 0;
};

}  // namespace apogee
