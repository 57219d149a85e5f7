#include "services/broker/metrics/probe.h"

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace apogee::broker {
namespace {

// The value of each counter child of `family`, keyed by its labels other
// than the probe's constant ones ("topic=A,consumer_group=G").
std::map<std::string, double> Counters(prometheus::Registry& registry, const std::string& family) {
  std::map<std::string, double> out;
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      std::string key;
      for (const prometheus::ClientMetric::Label& l : m.label) {
        if (l.name == "cluster" || l.name == "node_type" || l.name == "node_id") continue;
        key += (key.empty() ? "" : ",") + l.name + "=" + l.value;
      }
      out[key] = f.type == prometheus::MetricType::Histogram
                     ? static_cast<double>(m.histogram.sample_count)
                     : m.counter.value;
    }
  }
  return out;
}

TEST(ProbeTest, EachLabelSetCountsOnItsOwnChild) {
  auto registry = std::make_shared<prometheus::Registry>();
  Probe probe(registry, "c", "n");
  probe.OnMessagesIn("A", 2, 200);
  probe.OnMessagesIn("B", 1, 100);
  probe.OnMessagesIn("A", 3, 300);
  probe.OnRpc("send", "OK", absl::Milliseconds(1));
  probe.OnRpc("send", "OK", absl::Milliseconds(2));
  probe.OnRpc("send", "BAD_REQUEST", absl::Milliseconds(1));
  probe.OnRpc("ack", "OK", absl::Milliseconds(1));
  probe.OnPushed("A", "G", 4, 400);
  probe.OnMessagesOut("A", "H", 1, 100);
  probe.OnPushed("A", "G", 1, 100);

  using Values = std::map<std::string, double>;
  EXPECT_EQ(Counters(*registry, "apogee_messages_in_total"),
            (Values{{"topic=A", 5}, {"topic=B", 1}}));
  EXPECT_EQ(Counters(*registry, "apogee_throughput_in_bytes_total"),
            (Values{{"topic=A", 500}, {"topic=B", 100}}));
  EXPECT_EQ(Counters(*registry, "apogee_rpc_total"), (Values{{"result=BAD_REQUEST,rpc=send", 1},
                                                             {"result=OK,rpc=ack", 1},
                                                             {"result=OK,rpc=send", 2}}));
  EXPECT_EQ(Counters(*registry, "apogee_rpc_latency_seconds"),
            (Values{{"rpc=ack", 1}, {"rpc=send", 3}}));
  EXPECT_EQ(Counters(*registry, "apogee_messages_out_total"),
            (Values{{"consumer_group=G,topic=A", 5}, {"consumer_group=H,topic=A", 1}}));
  EXPECT_EQ(Counters(*registry, "apogee_throughput_out_bytes_total"),
            (Values{{"consumer_group=G,topic=A", 500}, {"consumer_group=H,topic=A", 100}}));
  // Only pushes count as pushed: no series for the group that pulled.
  EXPECT_EQ(Counters(*registry, "apogee_push_messages_total"),
            (Values{{"consumer_group=G,topic=A", 5}}));
}

}  // namespace
}  // namespace apogee::broker
