// Which messages of a topic a consumer receives: a tag expression ("*",
// "TagA||TagB") or an SQL92 expression over the message's user properties
// and its tag (as TAGS), both evaluated by the broker (RocketMQ's
// FilterExpression). A string converts to a tag expression, so
// `subscriptions["T"] = "TagA||TagB"` keeps working.
//
//   options.subscriptions["Orders"] = apogee::FilterExpression::Sql(
//       "amount > 100 AND region IN ('eu', 'us') AND TAGS = 'paid'");
//
// SQL (the broker's grammar, services/broker/filter/README.md): = <> != < <=
// > >= on numbers, = <> IN on strings, [NOT] BETWEEN a AND b, IS [NOT] NULL,
// AND OR NOT, parentheses. A property the message does not have is NULL,
// and a message matches only when the expression is TRUE (not FALSE or
// NULL). Messages that do not match are consumed past: the group never gets
// them. A malformed expression fails the receive or pull (or the push
// consumer's Create) with INVALID_ARGUMENT naming its position.
#pragma once

#include <string>
#include <utility>

namespace apogee {

struct FilterExpression {
  enum class Type { kTag, kSql };

  // Every message.
  FilterExpression() = default;
  // A tag expression ("*", "" or "TagA||TagB").
  FilterExpression(std::string tags)  // NOLINT: implicit, as the field was a string
      : expression(std::move(tags)) {}
  FilterExpression(const char* tags) : expression(tags) {}  // NOLINT

  static FilterExpression Tag(std::string tags) { return FilterExpression(std::move(tags)); }
  static FilterExpression Sql(std::string sql) {
    FilterExpression e(std::move(sql));
    e.type = Type::kSql;
    return e;
  }

  bool operator==(const FilterExpression& o) const {
    return type == o.type && expression == o.expression;
  }

  Type type = Type::kTag;
  std::string expression = "*";
};

}  // namespace apogee
