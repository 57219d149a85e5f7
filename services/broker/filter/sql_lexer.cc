#include "services/broker/filter/sql_lexer.h"

#include <array>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace apogee::broker::filter {
namespace {

// How much of a long expression an error message quotes.
constexpr size_t kQuotedPrefix = 80;

constexpr std::array<absl::string_view, 12> kKeywords = {
    "AND",  "OR",   "NOT",   "BETWEEN",  "IN",         "IS",
    "NULL", "TRUE", "FALSE", "CONTAINS", "STARTSWITH", "ENDSWITH"};

// `text` for an error message: printable ASCII as is (but " and \ escaped),
// other bytes as \xNN.
std::string Printable(absl::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (absl::ascii_isprint(c)) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentifierStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == '$'; }
bool IsIdentifierPart(char c) { return IsIdentifierStart(c) || IsDigit(c); }

// Length of the number syntax at the start of `text` (0 if none): digits,
// optional fraction, optional exponent; at least one digit before the
// exponent. Sets *malformed for an exponent marker without digits.
size_t ScanNumber(absl::string_view text, bool* malformed) {
  size_t i = 0;
  size_t digits = 0;
  while (i < text.size() && IsDigit(text[i])) ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && IsDigit(text[i])) ++i, ++digits;
  }
  if (digits == 0) return 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    size_t j = i + 1;
    if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
    if (j >= text.size() || !IsDigit(text[j])) {
      *malformed = true;
      return j;
    }
    while (j < text.size() && IsDigit(text[j])) ++j;
    i = j;
  }
  return i;
}

}  // namespace

std::optional<SqlNumber> ParseSqlNumber(absl::string_view text) {
  absl::string_view unsigned_part = text;
  if (!unsigned_part.empty() && (unsigned_part[0] == '+' || unsigned_part[0] == '-')) {
    unsigned_part.remove_prefix(1);
  }
  bool malformed = false;
  if (ScanNumber(unsigned_part, &malformed) != unsigned_part.size() || malformed ||
      unsigned_part.empty()) {
    return std::nullopt;
  }
  SqlNumber number;
  const bool integral = unsigned_part.find_first_of(".eE") == absl::string_view::npos;
  if (integral && absl::SimpleAtoi(text, &number.integer)) {
    number.is_integer = true;
    return number;
  }
  // Too large for int64, or not an integer.
  if (!absl::SimpleAtod(text, &number.real) || !std::isfinite(number.real)) return std::nullopt;
  return number;
}

absl::Status SqlError(absl::string_view expression, size_t position, absl::string_view what) {
  std::string quoted = Printable(expression.substr(0, kQuotedPrefix));
  if (expression.size() > kQuotedPrefix) absl::StrAppend(&quoted, "...");
  return absl::InvalidArgumentError(
      absl::StrCat("SQL filter \"", quoted, "\" at position ", position, ": ", what));
}

std::string DescribeToken(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEnd:
      return "end of input";
    case TokenKind::kString:
      return absl::StrCat("string ", Printable(token.raw));
    case TokenKind::kNumber:
      return absl::StrCat("number ", token.raw);
    default:
      return absl::StrCat("'", token.raw, "'");
  }
}

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view expression) {
  std::vector<Token> tokens;
  size_t i = 0;
  const size_t n = expression.size();
  auto add = [&](TokenKind kind, size_t start, size_t length, std::string text = "") {
    tokens.push_back(Token{kind, std::move(text), expression.substr(start, length), start + 1});
  };
  while (i < n) {
    const char c = expression[i];
    const size_t start = i;
    if (absl::ascii_isspace(c)) {
      ++i;
    } else if (c == '-' && i + 1 < n && expression[i + 1] == '-') {
      while (i < n && expression[i] != '\n' && expression[i] != '\r') ++i;
    } else if (c == '/' && i + 1 < n && expression[i + 1] == '*') {
      const size_t end = expression.find("*/", i + 2);
      if (end == absl::string_view::npos) {
        return SqlError(expression, start + 1, "unterminated comment (want */)");
      }
      i = end + 2;
    } else if (c == '\'') {
      std::string value;
      ++i;
      bool closed = false;
      while (i < n) {
        if (expression[i] == '\'') {
          if (i + 1 < n && expression[i + 1] == '\'') {  // '' is one quote
            value.push_back('\'');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        value.push_back(expression[i++]);
      }
      if (!closed) {
        return SqlError(expression, start + 1, "unterminated string literal (want a closing ')");
      }
      add(TokenKind::kString, start, i - start, std::move(value));
    } else if (IsDigit(c) || (c == '.' && i + 1 < n && IsDigit(expression[i + 1]))) {
      bool malformed = false;
      i += ScanNumber(expression.substr(i), &malformed);
      while (i < n && (IsIdentifierPart(expression[i]) || expression[i] == '.')) {
        malformed = true;  // 5abc, 1.2.3, 10L
        ++i;
      }
      const absl::string_view raw = expression.substr(start, i - start);
      if (malformed) {
        return SqlError(expression, start + 1,
                        absl::StrCat("malformed number '", Printable(raw), "'"));
      }
      if (!ParseSqlNumber(raw).has_value()) {
        return SqlError(expression, start + 1,
                        absl::StrCat("number ", raw, " is out of range (limit: a double)"));
      }
      add(TokenKind::kNumber, start, i - start, std::string(raw));
    } else if (IsIdentifierStart(c)) {
      while (i < n && IsIdentifierPart(expression[i])) ++i;
      const absl::string_view raw = expression.substr(start, i - start);
      std::string upper = absl::AsciiStrToUpper(raw);
      bool keyword = false;
      for (absl::string_view k : kKeywords) keyword = keyword || k == upper;
      if (keyword) {
        add(TokenKind::kKeyword, start, i - start, std::move(upper));
      } else {
        add(TokenKind::kIdentifier, start, i - start, std::string(raw));
      }
    } else {
      const char next = i + 1 < n ? expression[i + 1] : '\0';
      TokenKind kind;
      size_t length = 1;
      switch (c) {
        case '=':
          kind = TokenKind::kEqual;
          break;
        case '<':
          kind = next == '>'   ? TokenKind::kNotEqual
                 : next == '=' ? TokenKind::kLessEqual
                               : TokenKind::kLess;
          length = kind == TokenKind::kLess ? 1 : 2;
          break;
        case '>':
          kind = next == '=' ? TokenKind::kGreaterEqual : TokenKind::kGreater;
          length = next == '=' ? 2 : 1;
          break;
        case '!':
          if (next != '=') {
            return SqlError(expression, start + 1, "unexpected character '!' (did you mean !=?)");
          }
          kind = TokenKind::kNotEqual;
          length = 2;
          break;
        case '(':
          kind = TokenKind::kLeftParen;
          break;
        case ')':
          kind = TokenKind::kRightParen;
          break;
        case ',':
          kind = TokenKind::kComma;
          break;
        case '-':
          kind = TokenKind::kMinus;
          break;
        case '+':
          kind = TokenKind::kPlus;
          break;
        case '"':
          return SqlError(expression, start + 1,
                          "unexpected character '\"' (string literals are single-quoted: 'text')");
        default:
          return SqlError(
              expression, start + 1,
              absl::StrCat("unexpected character '", Printable(absl::string_view(&c, 1)), "'"));
      }
      add(kind, start, length);
      i += length;
    }
  }
  add(TokenKind::kEnd, n, 0);
  return tokens;
}

}  // namespace apogee::broker::filter
