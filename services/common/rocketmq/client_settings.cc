#include "services/common/rocketmq/client_settings.h"

#include "absl/strings/str_cat.h"
#include "services/common/clock/proto_time.h"
#include "services/common/status/v2_status.h"

namespace apogee::rocketmq {
namespace {

void SetExponential(int32_t attempts, absl::Duration initial, absl::Duration max, float multiplier,
                    v2::RetryPolicy* out) {
  out->set_max_attempts(attempts);
  v2::ExponentialBackoff* backoff = out->mutable_exponential_backoff();
  ToProtoDuration(initial, backoff->mutable_initial());
  ToProtoDuration(max, backoff->mutable_max());
  backoff->set_multiplier(multiplier);
}

absl::Status Unrecognized(const std::string& detail) {
  return WithV2Code(absl::InvalidArgumentError(detail), v2::UNRECOGNIZED_CLIENT_TYPE);
}

}  // namespace

absl::StatusOr<v2::Settings> ReplySettings(const v2::Settings& client, const SettingsPolicy& policy,
                                           bool group_fifo) {
  v2::Settings reply = client;
  reply.mutable_metric()->set_on(false);
  reply.mutable_metric()->clear_endpoints();
  switch (client.client_type()) {
    case v2::PRODUCER: {
      if (client.pub_sub_case() == v2::Settings::kSubscription) {
        return Unrecognized("settings.client_type is PRODUCER but settings carry a subscription");
      }
      SetExponential(policy.producer_max_attempts, policy.producer_backoff_initial,
                     policy.producer_backoff_max, policy.backoff_multiplier,
                     reply.mutable_backoff_policy());
      v2::Publishing* publishing = reply.mutable_publishing();
      publishing->set_max_body_size(policy.max_body_bytes);
      publishing->set_validate_message_type(policy.validate_message_type);
      return reply;
    }
    case v2::PUSH_CONSUMER:
    case v2::SIMPLE_CONSUMER:
    case v2::PULL_CONSUMER: {
      if (client.pub_sub_case() == v2::Settings::kPublishing) {
        return Unrecognized(absl::StrCat("settings.client_type is ",
                                         v2::ClientType_Name(client.client_type()),
                                         " but settings carry publishing"));
      }
      SetExponential(policy.consumer_max_attempts, policy.consumer_backoff_initial,
                     policy.consumer_backoff_max, policy.backoff_multiplier,
                     reply.mutable_backoff_policy());
      v2::Subscription* subscription = reply.mutable_subscription();
      subscription->set_fifo(group_fifo);
      subscription->set_receive_batch_size(policy.receive_batch_size);
      if (client.client_type() != v2::SIMPLE_CONSUMER ||
          !subscription->has_long_polling_timeout()) {
        ToProtoDuration(policy.long_polling_timeout, subscription->mutable_long_polling_timeout());
      }
      return reply;
    }
    default:
      return Unrecognized(absl::StrCat(
          "settings.client_type ", v2::ClientType_Name(client.client_type()),
          " is not supported (want PRODUCER, PUSH_CONSUMER, SIMPLE_CONSUMER or PULL_CONSUMER)"));
  }
}

}  // namespace apogee::rocketmq
