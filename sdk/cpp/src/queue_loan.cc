#include "sdk/cpp/src/queue_loan.h"

#include <cstdio>
#include <utility>

#include "sdk/cpp/src/convert.h"
#include "sdk/cpp/src/pull_call.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/v2_status.h"

namespace apogee::sdk {

QueueLoan::QueueLoan(QueueLoanOptions options, Channels* channels, Consume consume,
                     Progress progress)
    : options_(std::move(options)),
      channels_(channels),
      consume_(std::move(consume)),
      progress_(std::move(progress)) {
  thread_ = std::thread([this] { Run(); });
}

QueueLoan::~QueueLoan() { Stop(); }

void QueueLoan::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void QueueLoan::Run() {
  int64_t offset = options_.offset;
  int64_t reported = offset;
  v2::PullMessageRequest request;
  request.mutable_group()->set_name(options_.group);
  request.mutable_message_queue()->mutable_topic()->set_name(options_.topic);
  request.mutable_message_queue()->set_id(options_.queue_id);
  request.mutable_message_queue()->mutable_broker()->set_name(options_.broker);
  request.set_batch_size(options_.batch);
  *request.mutable_filter_expression() = ToV2Filter(options_.filter);
  ToProtoDuration(options_.long_poll, request.mutable_long_polling_timeout());
  // Hands the queue back at `at` (the first message not consumed).
  auto give_back = [this](int64_t at, const char* why) {
    if (stopping_) return;
    std::fprintf(stderr,
                 "apogee-sdk event=loan_returned topic=%s queue=%d endpoint=%s offset=%lld "
                 "why=\"%s\"\n",
                 options_.topic.c_str(), options_.queue_id, options_.endpoint.c_str(),
                 static_cast<long long>(at), why);
    progress_(at, /*returned=*/true);
  };
  while (!stopping_) {
    request.set_offset(offset);
    auto answer = PullOnce(*channels_, options_.endpoint, request, options_.long_poll,
                           options_.request_timeout);
    if (!answer.ok()) {
      give_back(offset, std::string(answer.status().message()).c_str());
      break;
    }
    const v2::Code code = ToV2Code(answer->in_band);
    if (code != v2::OK && code != v2::MESSAGE_NOT_FOUND) {
      give_back(offset, std::string(answer->in_band.message()).c_str());
      break;
    }
    bool retry = false;
    for (const v2::Message& m : answer->messages) {
      if (stopping_) break;
      if (!consume_(FromV2(m, options_.broker, options_.endpoint))) {
        // Handed back here: the lending broker pushes it again (and from
        // then on its redelivery backoff and DLQ apply).
        offset = m.system_properties().queue_offset();
        retry = true;
        break;
      }
      offset = m.system_properties().queue_offset() + 1;
    }
    if (stopping_) break;
    if (retry) {
      give_back(offset, "a message is to be retried");
      break;
    }
    if (answer->next_offset >= 0) offset = answer->next_offset;
    if (answer->read_from.has_value() && *answer->read_from == 0) {
      give_back(offset, "near the head again");
      break;
    }
    if (offset != reported) progress_(offset, /*returned=*/false);
    reported = offset;
  }
  done_ = true;
}

}  // namespace apogee::sdk
