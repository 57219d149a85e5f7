#include "sdk/cpp/src/completion_thread.h"

namespace apogee::sdk {

CompletionThread::CompletionThread()
    : thread_([this] {
        void* tag = nullptr;
        bool ok = false;
        // A unary Finish always completes (ok is true for it whatever the
        // call's status), so every tag is a Call to run and free.
        while (queue_.Next(&tag, &ok)) {
          std::unique_ptr<Tag> call(static_cast<Tag*>(tag));
          call->Run();
        }
      }) {}

CompletionThread::~CompletionThread() {
  queue_.Shutdown();  // Next ends once the calls in flight completed
  thread_.join();
}

}  // namespace apogee::sdk
