// Tokens of a SQL92 filter expression (RocketMQ's grammar, see README.md).
// Stateless functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apogee::broker::filter {

// Longest expression CompileSql accepts, in bytes.
inline constexpr size_t kMaxSqlLength = 4096;

enum class TokenKind {
  kIdentifier,    // property name: [A-Za-z_$][A-Za-z0-9_$]*, case-sensitive
  kString,        // 'text' with '' for a quote; `text` holds the decoded value
  kNumber,        // 12, 1.5, .5, 5., 1e3 (sign is a separate token)
  kKeyword,       // `text` holds it upper-cased: AND OR NOT BETWEEN IN IS NULL TRUE FALSE
                  // CONTAINS STARTSWITH ENDSWITH
  kEqual,         // =
  kNotEqual,      // <> or !=
  kLess,          // <
  kLessEqual,     // <=
  kGreater,       // >
  kGreaterEqual,  // >=
  kLeftParen,
  kRightParen,
  kComma,
  kMinus,
  kPlus,
  kEnd,  // end of input
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;       // see TokenKind
  absl::string_view raw;  // the token as written (points into the expression)
  size_t position = 0;    // 1-based byte position of its first character
};

// A number: exact when it is an integer that fits in int64, else a double.
struct SqlNumber {
  bool is_integer = false;
  int64_t integer = 0;
  double real = 0;

  double AsDouble() const { return is_integer ? static_cast<double>(integer) : real; }
};

// Parses `text` as a number: an optional sign, digits with an optional
// fraction ("1.5", ".5", "5.") and an optional exponent ("1e3", "2.5E-2").
// Nothing else: no spaces, hex, "NaN", "Infinity" or type suffix. nullopt
// when `text` is not such a number or is beyond double's range.
std::optional<SqlNumber> ParseSqlNumber(absl::string_view text);

// Splits `expression` into tokens, the last one kEnd. Skips white space,
// `-- line` and `/* block */` comments. Errors are INVALID_ARGUMENT and name
// the position (see SqlError).
absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view expression);

// INVALID_ARGUMENT `SQL filter "<expression>" at position <position>: <what>`
// (a long expression is shortened in the message).
absl::Status SqlError(absl::string_view expression, size_t position, absl::string_view what);

// How a token reads in an error: "end of input", "'AND'", "string 'x'",
// "number 5".
std::string DescribeToken(const Token& token);

}  // namespace apogee::broker::filter
