#include "services/broker/filter/sql_filter.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <utility>

#include "absl/strings/match.h"

namespace apogee::broker::filter {
namespace {

SqlTruth Truth(bool value) { return value ? SqlTruth::kTrue : SqlTruth::kFalse; }

SqlTruth Not(SqlTruth truth) {
  switch (truth) {
    case SqlTruth::kTrue:
      return SqlTruth::kFalse;
    case SqlTruth::kFalse:
      return SqlTruth::kTrue;
    case SqlTruth::kUnknown:
      break;
  }
  return SqlTruth::kUnknown;
}

// -1, 0, 1; exact for two integers, else compared as doubles.
int CompareNumbers(const SqlNumber& a, const SqlNumber& b) {
  if (a.is_integer && b.is_integer) return a.integer < b.integer ? -1 : a.integer > b.integer;
  const double x = a.AsDouble();
  const double y = b.AsDouble();
  return x < y ? -1 : x > y;
}

bool Holds(CompareOp op, int order) {
  switch (op) {
    case CompareOp::kEqual:
      return order == 0;
    case CompareOp::kNotEqual:
      return order != 0;
    case CompareOp::kLess:
      return order < 0;
    case CompareOp::kLessEqual:
      return order <= 0;
    case CompareOp::kGreater:
      return order > 0;
    case CompareOp::kGreaterEqual:
      return order >= 0;
  }
  return false;
}

SqlTruth Compare(const SqlNode& node, absl::string_view value) {
  const Literal& literal = node.value;
  switch (literal.type) {
    case Literal::Type::kString:  // = and <> only (the parser's rule)
      return Truth(Holds(node.op, value == literal.string ? 0 : 1));
    case Literal::Type::kBoolean:  // like Java's Boolean.valueOf: "true" in any case
      return Truth(
          Holds(node.op, absl::EqualsIgnoreCase(value, "true") == literal.boolean ? 0 : 1));
    case Literal::Type::kNumber: {
      const std::optional<SqlNumber> number = ParseSqlNumber(value);
      if (!number.has_value()) return SqlTruth::kUnknown;  // not a number: no match, even under NOT
      return Truth(Holds(node.op, CompareNumbers(*number, literal.number)));
    }
  }
  return SqlTruth::kUnknown;
}

bool MatchesString(StringMatch match, absl::string_view value, absl::string_view search) {
  switch (match) {
    case StringMatch::kContains:
      return absl::StrContains(value, search);
    case StringMatch::kStartsWith:
      return absl::StartsWith(value, search);
    case StringMatch::kEndsWith:
      return absl::EndsWith(value, search);
  }
  return false;
}

SqlTruth Eval(const SqlNode& node, const PropertyLookup& properties) {
  switch (node.kind) {
    case NodeKind::kConstant:
      return Truth(node.constant);
    case NodeKind::kAnd: {
      SqlTruth result = SqlTruth::kTrue;
      for (const auto& child : node.children) {
        const SqlTruth t = Eval(*child, properties);
        if (t == SqlTruth::kFalse) return SqlTruth::kFalse;
        if (t == SqlTruth::kUnknown) result = SqlTruth::kUnknown;
      }
      return result;
    }
    case NodeKind::kOr: {
      SqlTruth result = SqlTruth::kFalse;
      for (const auto& child : node.children) {
        const SqlTruth t = Eval(*child, properties);
        if (t == SqlTruth::kTrue) return SqlTruth::kTrue;
        if (t == SqlTruth::kUnknown) result = SqlTruth::kUnknown;
      }
      return result;
    }
    case NodeKind::kNot:
      return Not(Eval(*node.children[0], properties));
    default:
      break;
  }
  const std::optional<absl::string_view> value = properties.Get(node.property);
  if (node.kind == NodeKind::kIsNull) return Truth(value.has_value() == node.negated);
  if (node.kind == NodeKind::kStringMatch) {
    // RocketMQ: a missing property or an empty search string is FALSE, for
    // the NOT forms too.
    if (!value.has_value() || node.value.string.empty()) return SqlTruth::kFalse;
    return Truth(MatchesString(node.match, *value, node.value.string) != node.negated);
  }
  if (!value.has_value()) return SqlTruth::kUnknown;
  SqlTruth result = SqlTruth::kUnknown;
  switch (node.kind) {
    case NodeKind::kCompare:
      return Compare(node, *value);
    case NodeKind::kIn:
      result = Truth(node.set.contains(*value));
      break;
    case NodeKind::kBetween: {
      const std::optional<SqlNumber> number = ParseSqlNumber(*value);
      if (!number.has_value()) return SqlTruth::kUnknown;
      result =
          Truth(CompareNumbers(*number, node.low) >= 0 && CompareNumbers(*number, node.high) <= 0);
      break;
    }
    default:
      break;
  }
  return node.negated ? Not(result) : result;
}

// See SqlFilter::required_tags. Sorted, without duplicates.
std::optional<std::vector<std::string>> RequiredTags(const SqlNode& node) {
  if (node.property == "TAGS" && !node.negated) {
    if (node.kind == NodeKind::kCompare && node.op == CompareOp::kEqual &&
        node.value.type == Literal::Type::kString) {
      return std::vector<std::string>{node.value.string};
    }
    if (node.kind == NodeKind::kIn) {
      std::vector<std::string> tags(node.set.begin(), node.set.end());
      std::sort(tags.begin(), tags.end());
      return tags;
    }
  }
  if (node.kind == NodeKind::kAnd) {
    // TRUE needs every child TRUE: any child's tags will do; the
    // intersection is tighter unless it is empty (never TRUE: keep one set,
    // as no tags would mean every tag to the store).
    std::optional<std::vector<std::string>> out;
    for (const auto& child : node.children) {
      auto tags = RequiredTags(*child);
      if (!tags.has_value()) continue;
      if (!out.has_value()) {
        out = std::move(tags);
        continue;
      }
      std::vector<std::string> both;
      std::set_intersection(out->begin(), out->end(), tags->begin(), tags->end(),
                            std::back_inserter(both));
      if (!both.empty()) out = std::move(both);
    }
    return out;
  }
  if (node.kind == NodeKind::kOr) {
    // TRUE needs some child TRUE: every branch must name its tags.
    std::set<std::string> all;
    for (const auto& child : node.children) {
      auto tags = RequiredTags(*child);
      if (!tags.has_value()) return std::nullopt;
      all.insert(tags->begin(), tags->end());
    }
    return std::vector<std::string>(all.begin(), all.end());
  }
  return std::nullopt;
}

}  // namespace

SqlFilter::SqlFilter(std::string expression, std::unique_ptr<const SqlNode> root)
    : expression_(std::move(expression)),
      root_(std::move(root)),
      required_tags_(RequiredTags(*root_)) {}

SqlTruth SqlFilter::Evaluate(const PropertyLookup& properties) const {
  return Eval(*root_, properties);
}

absl::StatusOr<std::shared_ptr<const SqlFilter>> CompileSql(absl::string_view expression) {
  auto root = ParseSql(expression);
  if (!root.ok()) return root.status();
  return std::make_shared<const SqlFilter>(std::string(expression), *std::move(root));
}

}  // namespace apogee::broker::filter
