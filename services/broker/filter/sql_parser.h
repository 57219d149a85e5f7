// The parser of SQL92 filter expressions: tokens (sql_lexer.h) to a tree of
// SqlNode, by recursive descent. The grammar and its semantics are in
// README.md. Stateless functions; safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/broker/filter/sql_lexer.h"

namespace apogee::broker::filter {

// Deepest nesting of parentheses and NOT that ParseSql accepts.
inline constexpr int kMaxSqlDepth = 64;

enum class NodeKind {
  kConstant,     // TRUE / FALSE
  kAnd,          // children: 2 or more
  kOr,           // children: 2 or more
  kNot,          // children: 1
  kCompare,      // property <op> literal
  kBetween,      // property [NOT] BETWEEN low AND high
  kIn,           // property [NOT] IN ('a', ...)
  kIsNull,       // property IS [NOT] NULL
  kStringMatch,  // property [NOT] CONTAINS / STARTSWITH / ENDSWITH 'text'
};

enum class CompareOp { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual };
enum class StringMatch { kContains, kStartsWith, kEndsWith };

struct Literal {
  enum class Type { kString, kNumber, kBoolean };
  Type type = Type::kString;
  std::string string;    // kString
  SqlNumber number;      // kNumber
  bool boolean = false;  // kBoolean
};

struct SqlNode {
  NodeKind kind = NodeKind::kConstant;
  bool constant = false;  // kConstant
  bool negated = false;   // NOT BETWEEN, NOT IN, IS NOT NULL, NOT CONTAINS, ...
  std::vector<std::unique_ptr<const SqlNode>> children;  // kAnd, kOr, kNot
  std::string property;                        // kCompare, kBetween, kIn, kIsNull, kStringMatch
  CompareOp op = CompareOp::kEqual;            // kCompare
  StringMatch match = StringMatch::kContains;  // kStringMatch
  Literal value;                               // kCompare; kStringMatch (a string)
  SqlNumber low, high;                         // kBetween
  absl::flat_hash_set<std::string> set;        // kIn
};

// Parses `expression` (at most kMaxSqlLength bytes, nesting at most
// kMaxSqlDepth). Errors are INVALID_ARGUMENT naming the 1-based position and
// what was expected there.
absl::StatusOr<std::unique_ptr<const SqlNode>> ParseSql(absl::string_view expression);

}  // namespace apogee::broker::filter
