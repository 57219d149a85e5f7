#include "services/broker/metrics/probe.h"

#include "absl/strings/str_cat.h"

namespace apogee::broker {
namespace {

template <typename Builder>
auto& Family(Builder builder, const char* name, const char* help, prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

}  // namespace

Probe::Probe(std::shared_ptr<prometheus::Registry> registry, const std::string& cluster,
             const std::string& node_id)
    : registry_(std::move(registry)),
      base_{{"cluster", cluster}, {"node_type", "broker"}, {"node_id", node_id}},
      messages_in_(Family(prometheus::BuildCounter(), "apogee_messages_in_total",
                          "Messages stored by producers", *registry_)),
      bytes_in_(Family(prometheus::BuildCounter(), "apogee_throughput_in_bytes_total",
                       "Message body bytes stored by producers", *registry_)),
      messages_out_(Family(prometheus::BuildCounter(), "apogee_messages_out_total",
                           "Messages delivered to consumers", *registry_)),
      bytes_out_(Family(prometheus::BuildCounter(), "apogee_throughput_out_bytes_total",
                        "Message body bytes delivered to consumers", *registry_)),
      rpcs_(Family(prometheus::BuildCounter(), "apogee_rpc_total",
                   "Client RPCs by name and v2 result code", *registry_)),
      rpc_latency_(Family(prometheus::BuildHistogram(), "apogee_rpc_latency_seconds",
                          "Client RPC latency (receive includes long-poll time)", *registry_)),
      dlq_(Family(prometheus::BuildCounter(), "apogee_send_to_dlq_messages_total",
                  "Messages moved to a group's dead-letter queue", *registry_)),
      retries_(Family(prometheus::BuildCounter(), "apogee_retry_messages_total",
                      "Unacked messages sent to a group's retry topic", *registry_)),
      lag_messages_(Family(prometheus::BuildGauge(), "apogee_consumer_lag_messages",
                           "Messages stored but not yet acked by the group", *registry_)),
      lag_seconds_(Family(prometheus::BuildGauge(), "apogee_consumer_lag_latency_seconds",
                          "Age of the oldest message the group has not acked", *registry_)),
      in_flight_(Family(prometheus::BuildGauge(), "apogee_consumer_inflight_messages",
                        "Messages delivered and invisible, waiting for ack", *registry_)),
      fifo_busy_(Family(prometheus::BuildGauge(), "apogee_fifo_busy_message_groups",
                        "FIFO: message groups with a message in flight", *registry_)),
      fifo_blocked_(Family(prometheus::BuildGauge(), "apogee_fifo_blocked_message_groups",
                           "FIFO: message groups with messages held back behind one in flight "
                           "or waiting for redelivery",
                           *registry_)),
      fifo_waiting_(Family(prometheus::BuildGauge(), "apogee_fifo_waiting_messages",
                           "FIFO: messages read but held back", *registry_)),
      fifo_redelivered_(Family(prometheus::BuildCounter(), "apogee_fifo_redelivered_total",
                               "FIFO: messages made visible again in place (invisible time "
                               "ended or nacked), first of their message group",
                               *registry_)),
      request_bytes_(Family(prometheus::BuildGauge(), "apogee_request_inflight_bytes",
                            "SendMessage request bytes being handled (kind=in_flight) and "
                            "their limit (kind=limit, --max_inflight_bytes)",
                            *registry_)),
      connections_(Family(prometheus::BuildGauge(), "apogee_connections",
                          "Connected clients by kind (producer, consumer)", *registry_)),
      pushed_(Family(prometheus::BuildCounter(), "apogee_push_messages_total",
                     "Messages pushed on push consumer streams", *registry_)),
      push_streams_(Family(prometheus::BuildGauge(), "apogee_push_streams",
                           "Open push consumer streams", *registry_)),
      read_suggestions_(Family(prometheus::BuildCounter(), "apogee_read_suggestions_total",
                               "Readers told to read a queue from another broker of the group, "
                               "by the role of that broker (slave: cold data, master: hot)",
                               *registry_)),
      pop_reads_(Family(prometheus::BuildCounter(), "apogee_pop_reads_total",
                        "Reads of consumer pops by source: memory (the tail cache of records "
                        "just sent) or store (one store call, possibly for several queues)",
                        *registry_)),
      tail_cache_bytes_(Family(prometheus::BuildGauge(), "apogee_tail_cache_bytes",
                               "Bytes of just-sent records the broker keeps for consumers",
                               *registry_)) {}

prometheus::Labels Probe::With(prometheus::Labels labels) const {
  labels.insert(base_.begin(), base_.end());
  return labels;
}

void Probe::Flow::Add(int64_t message_count, int64_t byte_count) const {
  messages->Increment(static_cast<double>(message_count));
  bytes->Increment(static_cast<double>(byte_count));
}

void Probe::OnMessagesIn(const std::string& topic, int64_t messages, int64_t bytes) {
  in_by_topic_
      .Get(topic,
           [&] {
             const prometheus::Labels labels = With({{"topic", topic}});
             return Flow{&messages_in_.Add(labels), &bytes_in_.Add(labels)};
           })
      .Add(messages, bytes);
}

void Probe::OnMessagesOut(const std::string& topic, const std::string& group, int64_t messages,
                          int64_t bytes) {
  CountOut(absl::StrCat(topic, "\n", group), topic, group, messages, bytes);
}

void Probe::CountOut(const std::string& pair, const std::string& topic, const std::string& group,
                     int64_t messages, int64_t bytes) {
  out_by_pair_
      .Get(pair,
           [&] {
             const prometheus::Labels labels = With({{"topic", topic}, {"consumer_group", group}});
             return Flow{&messages_out_.Add(labels), &bytes_out_.Add(labels)};
           })
      .Add(messages, bytes);
}

void Probe::OnRpc(const std::string& rpc, const std::string& result, absl::Duration latency) {
  rpcs_by_result_
      .Get(absl::StrCat(rpc, "\n", result),
           [&] {
             return &rpcs_.Add(With({{"rpc", rpc}, {"result", result}}));
           })
      ->Increment();
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
  rpc_latency_by_rpc_.Get(rpc,
                          [&] {
                            return &rpc_latency_.Add(With({{"rpc", rpc}}), *buckets);
                          })
      ->Observe(absl::ToDoubleSeconds(latency));
}

void Probe::OnDeadLettered(const std::string& group, int64_t messages) {
  if (messages > 0) {
    dlq_.Add(With({{"consumer_group", group}})).Increment(static_cast<double>(messages));
  }
}

void Probe::OnRetried(const std::string& group, int64_t messages) {
  if (messages > 0) {
    retries_.Add(With({{"consumer_group", group}})).Increment(static_cast<double>(messages));
  }
}

void Probe::SetConsumerLag(const std::string& group, const std::string& topic, int64_t messages,
                           double seconds) {
  prometheus::Labels labels = With({{"consumer_group", group}, {"topic", topic}});
  lag_messages_.Add(labels).Set(static_cast<double>(messages));
  lag_seconds_.Add(labels).Set(seconds);
}

void Probe::SetFifo(const std::string& group, int64_t busy_groups, int64_t blocked_groups,
                    int64_t waiting) {
  const prometheus::Labels labels = With({{"consumer_group", group}});
  fifo_busy_.Add(labels).Set(static_cast<double>(busy_groups));
  fifo_blocked_.Add(labels).Set(static_cast<double>(blocked_groups));
  fifo_waiting_.Add(labels).Set(static_cast<double>(waiting));
}

void Probe::OnFifoRedelivered(const std::string& group, int64_t messages) {
  if (messages > 0) {
    fifo_redelivered_.Add(With({{"consumer_group", group}}))
        .Increment(static_cast<double>(messages));
  }
}

void Probe::SetInFlight(int64_t messages) {
  in_flight_.Add(With({})).Set(static_cast<double>(messages));
}

void Probe::SetRequestBytes(int64_t in_flight, int64_t limit) {
  request_bytes_.Add(With({{"kind", "in_flight"}})).Set(static_cast<double>(in_flight));
  request_bytes_.Add(With({{"kind", "limit"}})).Set(static_cast<double>(limit));
}

void Probe::SetConnections(int producers, int consumers) {
  connections_.Add(With({{"kind", "producer"}})).Set(producers);
  connections_.Add(With({{"kind", "consumer"}})).Set(consumers);
}

void Probe::OnPushed(const std::string& topic, const std::string& group, int64_t messages,
                     int64_t bytes) {
  const std::string pair = absl::StrCat(topic, "\n", group);
  pushed_by_pair_
      .Get(pair,
           [&] {
             return &pushed_.Add(With({{"topic", topic}, {"consumer_group", group}}));
           })
      ->Increment(static_cast<double>(messages));
  CountOut(pair, topic, group, messages, bytes);
}

void Probe::SetPushStreams(int64_t streams) {
  push_streams_.Add(With({})).Set(static_cast<double>(streams));
}

void Probe::SetPopReads(int64_t from_memory, int64_t from_store) {
  absl::MutexLock lock(&reads_mu_);
  // The sources keep totals; the counters move by what is new since.
  if (from_memory > memory_reads_) {
    pop_reads_.Add(With({{"source", "memory"}}))
        .Increment(static_cast<double>(from_memory - memory_reads_));
    memory_reads_ = from_memory;
  }
  if (from_store > store_reads_) {
    pop_reads_.Add(With({{"source", "store"}}))
        .Increment(static_cast<double>(from_store - store_reads_));
    store_reads_ = from_store;
  }
}

void Probe::SetTailCacheBytes(int64_t bytes) {
  tail_cache_bytes_.Add(With({})).Set(static_cast<double>(bytes));
}

void Probe::OnReadSuggestion(const std::string& target_role) {
  read_suggestions_.Add(With({{"target_role", target_role}})).Increment();
}

}  // namespace apogee::broker
