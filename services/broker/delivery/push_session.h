// One push consumer stream's state and delivery loop, independent of gRPC:
// the subscription, the credits left, the receipt handles pushed and not
// yet settled, and the queues Membership assigned. Messages come from
// PopEngine (cursors, in-flight tracking, acks, retry and DLQ stay there),
// restricted to the assigned queues; the loop pops on the worker executor
// whenever the stream has credits and something may be there, and parks
// otherwise. An arrival first pops on the thread that heard it, from the
// tail cache alone (no store call, so no blocking there); the rest goes to
// the executor. It listens to Arrivals for the queues that got messages and
// reads only those (and the retry topic only after an arrival there), so a
// message costs one store read, not one per assigned queue; a new
// assignment, a returned loan, a store error or the park timeout make it
// read every queue. It never pushes more than the credits granted.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "apogee/broker/v1/push.pb.h"
#include "services/broker/consume/arrivals.h"
#include "services/broker/consume/pop_engine.h"
#include "services/broker/delivery/assignment.h"
#include "services/broker/delivery/push_frames.h"
#include "services/broker/group/group_manager.h"
#include "services/broker/ha/read_advisor.h"
#include "services/broker/message/message_filter.h"
#include "services/broker/metrics/probe.h"
#include "services/broker/store_client/store_client.h"
#include "services/broker/topic/topic_manager.h"
#include "services/common/clock/clock.h"
#include "services/common/concurrency/executor.h"
#include "services/common/server/encoded.h"

namespace apogee::broker {

namespace pushv1 = ::apogee::broker::v1;

struct PushLimits {
  // Bound on initial credits, on each grant, and on credits left.
  int32_t max_credits = 10000;
  absl::Duration default_ack_timeout = absl::Seconds(60);
  absl::Duration min_ack_timeout = absl::Seconds(10);  // --min_invisible_time
  absl::Duration max_ack_timeout = absl::Hours(12);
  absl::Duration default_retry_delay = absl::Seconds(1);
  absl::Duration max_retry_delay = absl::Hours(2);
  size_t max_client_id_bytes = 256;
  // Messages popped per store round, pushed in one Deliveries frame: large
  // enough that a backlog drains in few rounds (each a store call and a
  // frame).
  int max_batch = 256;
  // Rounds a stream runs at once, on different queues: a round waits on the
  // store for its batch (~1.5 ms for 256 KiB) while others read, so a
  // backlog drains faster (94–110k → 121–143k msg/s on 4 queues,
  // docs/benchmarks.md).
  int max_rounds = 4;
  // A round's messages go in frames of at most this many bytes (a larger
  // message alone in its frame), far below clients' receive limits.
  int64_t max_frame_bytes = 4 << 20;
  // A parked stream pops again after this long even without an arrival
  // (covers store errors and messages whose wake-up was missed).
  absl::Duration park = absl::Seconds(5);
  // How often a stream checks whether its queues' next messages are cold
  // enough to lend them to a slave (PushDeps::read_advisor).
  absl::Duration lend_check = absl::Seconds(1);
};

// What every session uses; all outlive the sessions.
struct PushDeps {
  PopEngine* pop = nullptr;
  Arrivals* arrivals = nullptr;
  Membership* members = nullptr;
  TopicManager* topics = nullptr;
  GroupManager* groups = nullptr;
  Executor* executor = nullptr;
  Probe* probe = nullptr;
  const Clock* clock = nullptr;
  std::string broker_name;
  // Both set: a clustering stream whose next message on a queue lies far
  // behind the head lends that queue to an in-sync slave (ReadFrom).
  StoreClient* store = nullptr;
  ha::ReadAdvisor* read_advisor = nullptr;
};

// Thread-safe. Store calls run on the executor; the public methods only
// take the session's lock and hand work off, so gRPC threads may call them.
// `send` is called with the session's lock held (so responses keep their
// order); it must only queue the response, which comes encoded (Deliveries
// frames are written straight from the popped records: push_frames.h).
class PushSession : public std::enable_shared_from_this<PushSession> {
 public:
  using Send = std::function<void(Encoded<pushv1::ConsumeResponse>)>;

  // Checks the subscription (INVALID_ARGUMENT naming the field and the
  // limit; NOT_FOUND for an unknown topic: push never creates topics).
  static absl::StatusOr<std::shared_ptr<PushSession>> Create(const PushDeps& deps,
                                                             const PushLimits& limits,
                                                             const pushv1::Subscribe& subscribe,
                                                             Send send);

  // Sends Subscribed, joins the group (Assignment) and starts delivering.
  void Start();
  // More credits; INVALID_ARGUMENT naming `field` (and nothing granted)
  // when out of range.
  absl::Status Grant(int32_t messages, absl::string_view field = "credit.messages");
  // Acks and nacks on the executor, then answers with a SettleResult.
  // Settles that arrive while earlier ones are applied are applied
  // together (one offset commit per queue).
  void Settle(pushv1::Settle settle);
  // The consumer's progress on a queue this stream lent (ReadFrom): the
  // group's cursor moves up to it; `returned` resumes pushing the queue.
  // Progress on a queue not lent (any more) is ignored; INVALID_ARGUMENT
  // for a negative offset.
  absl::Status OnQueueProgress(const pushv1::QueueProgress& progress);
  // The stream ended: leave the group (queues go to the others at once) and
  // make every unsettled message visible again so others get it. Idempotent.
  void Close();

  const std::string& progress_key() const { return key_; }
  const std::string& topic() const { return topic_; }
  const std::string& group() const { return group_; }
  bool broadcasting() const { return broadcasting_; }

 private:
  PushSession(const PushDeps& deps, const PushLimits& limits, Send send)
      : deps_(deps), limits_(limits), send_(std::move(send)) {}

  // Schedules a delivery round when there are credits and some queue no
  // running round holds may hold something.
  void Wake();
  void WakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a delivery round should start now (then it is counted): open,
  // started, fewer than max_rounds running, and WorkLocked.
  bool StartRoundLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Arrivals listener: a message landed on `queue` of `topic`.
  void OnArrival(const std::string& topic, int32_t queue);
  // Marks what the arrival makes unread; false when it is not this
  // session's (or the session closed).
  bool ArrivedLocked(const std::string& topic, int32_t queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The unread queues of this member no round holds (unread_all_ turned
  // into every assigned queue and the retry topic).
  std::vector<int32_t> FreeUnreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Credits no round holds, and something unread no round holds.
  bool WorkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One delivery round: pops the free unread queues (half of them when
  // another round may start, which then takes the rest) with credits it
  // holds meanwhile, pushes what it got, and goes on while WorkLocked.
  // `memory_only`: popped from the tail cache alone
  // (PopEngine::Scope::memory_only), so it may run on the thread that heard
  // an arrival; what it leaves unread goes to a worker's round.
  void Pump(bool memory_only = false);
  // Applies the queued settles (on the executor; one runs at a time).
  void ApplySettles();
  // Parked long enough: read every queue once (covers store errors and
  // cursor moves no arrival announces).
  void OnParkTimeout();
  void OnAssignment(const std::vector<int32_t>& queues, int members);
  // Lends each of `queues` whose next message is cold to the slave the
  // read advisor names (store reads: runs on the executor, in Pump).
  void LendColdQueues(const std::vector<int32_t>& queues);
  std::vector<int32_t> NotLent(std::vector<int32_t> queues);
  // Makes `handles` visible at once (redelivered through the retry topic).
  void Release(std::vector<std::string> handles);

  const PushDeps deps_;
  const PushLimits limits_;
  const Send send_;
  // Set by Create, then read-only.
  std::string client_id_;
  std::string group_;
  std::string key_;  // progress key: the group, or the member's own when broadcasting
  std::string topic_;
  MessageFilter filter_;
  bool broadcasting_ = false;
  bool fifo_ = false;  // group consumes orderly (Subscribed.fifo)
  bool follows_read_from_ = false;
  bool stored_messages_ = false;  // Subscribe.stored_messages
  absl::Duration ack_timeout_;
  int32_t initial_credits_ = 0;
  int queue_count_ = 0;

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t member_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t credits_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int32_t> queues_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> unsettled_ ABSL_GUARDED_BY(mu_);
  // Settles received and not applied yet; `settling_`: an ApplySettles is
  // queued or running.
  std::vector<pushv1::Settle> settles_ ABSL_GUARDED_BY(mu_);
  bool settling_ ABSL_GUARDED_BY(mu_) = false;
  // Delivery rounds queued or running; the queues (and the retry topic) and
  // credits they hold: no two rounds pop one queue.
  int rounds_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<int32_t> reading_ ABSL_GUARDED_BY(mu_);
  bool reading_retry_ ABSL_GUARDED_BY(mu_) = false;
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t listen_ ABSL_GUARDED_BY(mu_) = 0;  // Arrivals listener, 0 if none
  uint64_t watch_ ABSL_GUARDED_BY(mu_) = 0;   // park timeout (Arrivals watch), 0 if none
  // Where popping may find something: queues an arrival named (or a pop
  // left unfinished), every queue, the retry topic.
  std::set<int32_t> unread_ ABSL_GUARDED_BY(mu_);
  bool unread_all_ ABSL_GUARDED_BY(mu_) = true;
  bool unread_retry_ ABSL_GUARDED_BY(mu_) = true;
  // Queues lent to another broker of the group (queue -> route broker id):
  // not popped here until the consumer returns them.
  std::map<int32_t, int64_t> lent_ ABSL_GUARDED_BY(mu_);
  absl::Time lend_check_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace apogee::broker
