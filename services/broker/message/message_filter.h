// A subscription's message filter: the v2 FilterExpression of type TAG
// ("*", "TagA||TagB") or SQL (SQL92 on user properties and TAGS, compiled by
// services/broker/filter). Every read path (pop for ReceiveMessage and push
// streams, PullMessage) applies it the same two ways: NarrowRead lets the
// store skip records by its tag index before reading them, and Matches
// decides on each decoded message. A record either step drops is consumed
// past (the cursor or next_offset moves beyond it), never delivered.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "apache/rocketmq/v2/definition.pb.h"
#include "apogee/store/v1/store.pb.h"
#include "services/broker/filter/sql_filter.h"
#include "services/broker/filter/sql_filter_cache.h"

namespace apogee::broker {

namespace v2 = ::apache::rocketmq::v2;

// Immutable once parsed; copies share the compiled SQL expression, so any
// number of threads may use one at once.
class MessageFilter {
 public:
  // Matches every message.
  MessageFilter() = default;

  // True when it lets every message through.
  bool all() const { return tags_.empty() && sql_ == nullptr; }

  // Adds what the store can filter by itself to `read`: the tags of a TAG
  // filter, or those a SQL expression requires (`TAGS = 'x' AND ...`); the
  // store cannot evaluate the rest, whose properties are inside the body.
  void NarrowRead(store::v1::ReadRequest* read) const;

  // How many records a read should ask for to deliver `wanted` messages: SQL
  // filters read ahead (the store cannot skip for them), the caller then
  // stops at `wanted` matches and resumes after the last record it looked at.
  int RecordsToRead(int wanted) const;

  // Whether `message` (as FromStoreRecord decoded it) passes: its tag is one
  // of a TAG filter's tags; a SQL expression is TRUE for it (FALSE and
  // UNKNOWN, e.g. from a missing property, do not pass).
  bool Matches(const v2::Message& message) const;

  // Without a SQL expression a stored record's tag decides (MatchesTag): the
  // record need not be decoded to be filtered.
  bool by_tag_only() const { return sql_ == nullptr; }
  bool MatchesTag(absl::string_view tag) const;

  // Parses `expression`. ILLEGAL_FILTER_EXPRESSION for an unknown type, an
  // empty tag ("a||"), or a SQL expression that does not compile (the
  // message names the expression and the position). SQL expressions come
  // from `cache` when given (it compiles each text once), else are compiled
  // here.
  static absl::StatusOr<MessageFilter> Parse(const v2::FilterExpression& expression,
                                             filter::SqlFilterCache* cache = nullptr);

 private:
  std::vector<std::string> tags_;  // wanted tags (TAG, or required by SQL); empty: any
  std::shared_ptr<const filter::SqlFilter> sql_;  // SQL: the compiled expression
};

// The properties a SQL filter sees in a decoded message: "TAGS" is the tag
// (NULL when the message has none), every other name a user property.
class MessageProperties final : public filter::PropertyLookup {
 public:
  explicit MessageProperties(const v2::Message& message) : message_(message) {}
  std::optional<absl::string_view> Get(absl::string_view name) const override;

 private:
  const v2::Message& message_;
};

}  // namespace apogee::broker
