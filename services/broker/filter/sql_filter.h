// SQL92 message filters (RocketMQ's `FilterExpression{type: SQL}`): compile an
// expression once, evaluate it against many messages' properties. The grammar
// and the semantics (three-valued logic, numbers, TAGS) are in README.md.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/broker/filter/sql_parser.h"

namespace apogee::broker::filter {

// A message's properties by name (user properties, plus the tag as "TAGS").
// nullopt: the message has no such property (SQL NULL).
class PropertyLookup {
 public:
  virtual ~PropertyLookup() = default;
  virtual std::optional<absl::string_view> Get(absl::string_view name) const = 0;
};

// A PropertyLookup over a map from names to values (std::map, absl maps,
// google::protobuf::Map<std::string, std::string>). The map must outlive it.
template <typename Map>
class MapLookup final : public PropertyLookup {
 public:
  explicit MapLookup(const Map& map) : map_(map) {}
  std::optional<absl::string_view> Get(absl::string_view name) const override {
    auto it = map_.find(typename Map::key_type(name));
    if (it == map_.end()) return std::nullopt;
    return absl::string_view(it->second);
  }

 private:
  const Map& map_;
};

// SQL's three truth values; a message matches only on kTrue.
enum class SqlTruth { kFalse, kTrue, kUnknown };

// A compiled expression. Immutable: Matches/Evaluate may run on any number of
// threads at once.
class SqlFilter {
 public:
  SqlFilter(std::string expression, std::unique_ptr<const SqlNode> root);

  // True when the expression is TRUE for the message (FALSE and UNKNOWN,
  // e.g. from a missing property, do not match).
  bool Matches(const PropertyLookup& properties) const {
    return Evaluate(properties) == SqlTruth::kTrue;
  }
  SqlTruth Evaluate(const PropertyLookup& properties) const;

  const std::string& expression() const { return expression_; }

  // The tags a message must have for the expression to be TRUE, when the
  // expression says (TAGS = 'x', TAGS IN (...), under AND, or in every
  // branch of an OR), so a reader can let the store skip other tags by its
  // index; nullopt when any tag, or none, may match. Never empty.
  const std::optional<std::vector<std::string>>& required_tags() const { return required_tags_; }

 private:
  const std::string expression_;
  const std::unique_ptr<const SqlNode> root_;
  const std::optional<std::vector<std::string>> required_tags_;
};

// Compiles `expression`. INVALID_ARGUMENT (the broker answers
// ILLEGAL_FILTER_EXPRESSION) naming the 1-based position and what was
// expected, e.g. `SQL filter "a = " at position 5: expected a literal, got
// end of input`; also for an expression over kMaxSqlLength bytes or nested
// deeper than kMaxSqlDepth.
absl::StatusOr<std::shared_ptr<const SqlFilter>> CompileSql(absl::string_view expression);

}  // namespace apogee::broker::filter
