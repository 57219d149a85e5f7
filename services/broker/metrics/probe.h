// The broker's Prometheus families, named after RocketMQ 5's metrics with an
// apogee_ prefix where the meaning is the same.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace apogee::broker {

// Thread-safe.
class Probe {
 public:
  Probe(std::shared_ptr<prometheus::Registry> registry, const std::string& cluster,
        const std::string& node_id);

  void OnMessagesIn(const std::string& topic, int64_t messages, int64_t bytes);
  void OnMessagesOut(const std::string& topic, const std::string& group, int64_t messages,
                     int64_t bytes);
  // rpc: "send", "send_relayed", "receive", "ack"; result: the v2 code name.
  void OnRpc(const std::string& rpc, const std::string& result, absl::Duration latency);
  void OnDeadLettered(const std::string& group, int64_t messages);
  void OnRetried(const std::string& group, int64_t messages);
  void SetConsumerLag(const std::string& group, const std::string& topic, int64_t messages,
                      double seconds);
  void SetInFlight(int64_t messages);
  // FIFO consumption of a consumer group (docs/design/message-types.md §4):
  // message groups with a message in flight, message groups with messages
  // held back (behind that one, or waiting for redelivery), those messages.
  void SetFifo(const std::string& group, int64_t busy_groups, int64_t blocked_groups,
               int64_t waiting);
  // FIFO messages made visible again in place (invisible time ended, nack).
  void OnFifoRedelivered(const std::string& group, int64_t messages);
  // SendMessage request bytes being handled, and --max_inflight_bytes.
  void SetRequestBytes(int64_t in_flight, int64_t limit);
  void SetConnections(int producers, int consumers);
  // Push delivery: messages pushed on streams (also counted as messages
  // out), and the number of open push streams.
  void OnPushed(const std::string& topic, const std::string& group, int64_t messages,
                int64_t bytes);
  void SetPushStreams(int64_t streams);
  // A reader was told to read a queue from another broker of the group
  // (services/broker/ha/read_advisor.h); target_role: "slave" or "master".
  void OnReadSuggestion(const std::string& target_role);
  // Pops' reads so far (monotonic totals): answered from the tail cache
  // (consume/tail_cache.h) or sent to the store; and the cache's size.
  void SetPopReads(int64_t from_memory, int64_t from_store);
  void SetTailCacheBytes(int64_t bytes);

 private:
  // A family's children by their label values, kept after the first
  // lookup: prometheus-cpp's Add builds a label map, merges the constant
  // labels and hashes them under the family's lock, which cost ~6 % of the
  // broker's CPU at one message per send (docs/benchmarks.md). Children
  // are never removed, so the pointers stay valid. V is what one lookup
  // finds: a child, or the children of several families with one label set.
  template <typename V>
  class Children {
   public:
    template <typename Make>
    V Get(absl::string_view key, Make make) {
      absl::MutexLock lock(&mu_);
      auto it = children_.find(key);
      if (it == children_.end()) it = children_.emplace(std::string(key), make()).first;
      return it->second;
    }

   private:
    absl::Mutex mu_;
    absl::flat_hash_map<std::string, V> children_ ABSL_GUARDED_BY(mu_);
  };
  // A message count and its bytes, counted together.
  struct Flow {
    prometheus::Counter* messages;
    prometheus::Counter* bytes;
    void Add(int64_t message_count, int64_t byte_count) const;
  };

  // OnMessagesOut with its key (topic '\n' group) already made.
  void CountOut(const std::string& pair, const std::string& topic, const std::string& group,
                int64_t messages, int64_t bytes);
  prometheus::Labels With(prometheus::Labels labels) const;

  std::shared_ptr<prometheus::Registry> registry_;
  const prometheus::Labels base_;
  prometheus::Family<prometheus::Counter>& messages_in_;
  prometheus::Family<prometheus::Counter>& bytes_in_;
  prometheus::Family<prometheus::Counter>& messages_out_;
  prometheus::Family<prometheus::Counter>& bytes_out_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_latency_;
  prometheus::Family<prometheus::Counter>& dlq_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Gauge>& lag_messages_;
  prometheus::Family<prometheus::Gauge>& lag_seconds_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Gauge>& fifo_busy_;
  prometheus::Family<prometheus::Gauge>& fifo_blocked_;
  prometheus::Family<prometheus::Gauge>& fifo_waiting_;
  prometheus::Family<prometheus::Counter>& fifo_redelivered_;
  prometheus::Family<prometheus::Gauge>& request_bytes_;
  prometheus::Family<prometheus::Gauge>& connections_;
  prometheus::Family<prometheus::Counter>& pushed_;
  prometheus::Family<prometheus::Gauge>& push_streams_;
  prometheus::Family<prometheus::Counter>& read_suggestions_;
  prometheus::Family<prometheus::Counter>& pop_reads_;
  prometheus::Family<prometheus::Gauge>& tail_cache_bytes_;
  // The children of the per-send and per-delivery counters, by label values.
  Children<Flow> in_by_topic_;
  Children<Flow> out_by_pair_;  // key: topic '\n' group
  Children<prometheus::Counter*> pushed_by_pair_;
  Children<prometheus::Counter*> rpcs_by_result_;  // key: rpc '\n' result
  Children<prometheus::Histogram*> rpc_latency_by_rpc_;
  absl::Mutex reads_mu_;
  int64_t memory_reads_ ABSL_GUARDED_BY(reads_mu_) = 0;  // totals already counted
  int64_t store_reads_ ABSL_GUARDED_BY(reads_mu_) = 0;
};

}  // namespace apogee::broker
