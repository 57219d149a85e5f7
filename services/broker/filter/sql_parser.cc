#include "services/broker/filter/sql_parser.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace apogee::broker::filter {
namespace {

using NodePtr = std::unique_ptr<const SqlNode>;

std::optional<CompareOp> CompareOpOf(TokenKind kind) {
  static constexpr std::pair<TokenKind, CompareOp> kOps[] = {
      {TokenKind::kEqual, CompareOp::kEqual},
      {TokenKind::kNotEqual, CompareOp::kNotEqual},
      {TokenKind::kLess, CompareOp::kLess},
      {TokenKind::kLessEqual, CompareOp::kLessEqual},
      {TokenKind::kGreater, CompareOp::kGreater},
      {TokenKind::kGreaterEqual, CompareOp::kGreaterEqual},
  };
  for (const auto& [token, op] : kOps) {
    if (token == kind) return op;
  }
  return std::nullopt;
}

// Recursive descent over the grammar in README.md; one instance per parse.
class Parser {
 public:
  Parser(absl::string_view expression, std::vector<Token> tokens)
      : expression_(expression), tokens_(std::move(tokens)) {}

  absl::StatusOr<NodePtr> ParseAll() {
    auto node = ParseOr();
    if (!node.ok()) return node.status();
    if (Peek().kind != TokenKind::kEnd) return Expected("AND, OR or end of input");
    return node;
  }

 private:
  const Token& Peek() const { return tokens_[next_]; }
  const Token& Take() {
    const Token& token = tokens_[next_];
    if (token.kind != TokenKind::kEnd) ++next_;
    return token;
  }
  bool IsKeyword(absl::string_view keyword) const {
    return Peek().kind == TokenKind::kKeyword && Peek().text == keyword;
  }
  absl::Status ErrorAt(const Token& token, absl::string_view what) const {
    return SqlError(expression_, token.position, what);
  }
  absl::Status Expected(absl::string_view what) const {
    return ErrorAt(Peek(), absl::StrCat("expected ", what, ", got ", DescribeToken(Peek())));
  }

  // Enters one level of parentheses or NOT.
  absl::Status Descend() {
    if (++depth_ > kMaxSqlDepth) {
      return ErrorAt(Peek(), absl::StrCat("nesting of parentheses and NOT is deeper than ",
                                          kMaxSqlDepth, " (limit ", kMaxSqlDepth, ")"));
    }
    return absl::OkStatus();
  }

  // or := and (OR and)*   and := not (AND not)*   (n-ary nodes, so long
  // chains do not make deep trees)
  absl::StatusOr<NodePtr> ParseOr() { return ParseChain("OR", NodeKind::kOr); }

  absl::StatusOr<NodePtr> ParseChain(absl::string_view keyword, NodeKind kind) {
    auto first = kind == NodeKind::kOr ? ParseChain("AND", NodeKind::kAnd) : ParseNot();
    if (!first.ok() || !IsKeyword(keyword)) return first;
    auto node = std::make_unique<SqlNode>();
    node->kind = kind;
    node->children.push_back(*std::move(first));
    while (IsKeyword(keyword)) {
      Take();
      auto next = kind == NodeKind::kOr ? ParseChain("AND", NodeKind::kAnd) : ParseNot();
      if (!next.ok()) return next.status();
      node->children.push_back(*std::move(next));
    }
    return NodePtr(std::move(node));
  }

  // not := NOT not | primary
  absl::StatusOr<NodePtr> ParseNot() {
    if (!IsKeyword("NOT")) return ParsePrimary();
    if (absl::Status s = Descend(); !s.ok()) return s;
    Take();
    auto child = ParseNot();
    if (!child.ok()) return child.status();
    --depth_;
    auto node = std::make_unique<SqlNode>();
    node->kind = NodeKind::kNot;
    node->children.push_back(*std::move(child));
    return NodePtr(std::move(node));
  }

  // primary := '(' or ')' | TRUE | FALSE | property predicate
  absl::StatusOr<NodePtr> ParsePrimary() {
    const Token& token = Peek();
    if (token.kind == TokenKind::kLeftParen) {
      if (absl::Status s = Descend(); !s.ok()) return s;
      Take();
      auto inner = ParseOr();
      if (!inner.ok()) return inner.status();
      if (Peek().kind != TokenKind::kRightParen) return Expected("AND, OR or ')'");
      Take();
      --depth_;
      return inner;
    }
    if (IsKeyword("TRUE") || IsKeyword("FALSE")) {
      auto node = std::make_unique<SqlNode>();
      node->kind = NodeKind::kConstant;
      node->constant = Take().text == "TRUE";
      return NodePtr(std::move(node));
    }
    if (token.kind == TokenKind::kIdentifier) return ParsePredicate(Take().text);
    return Expected("a property name, '(', NOT, TRUE or FALSE");
  }

  absl::StatusOr<NodePtr> ParsePredicate(const std::string& property) {
    auto node = std::make_unique<SqlNode>();
    node->property = property;
    const std::optional<CompareOp> op = CompareOpOf(Peek().kind);
    if (op.has_value()) {
      const Token& op_token = Take();
      node->kind = NodeKind::kCompare;
      node->op = *op;
      const bool ordering = *op != CompareOp::kEqual && *op != CompareOp::kNotEqual;
      auto value = ParseLiteral(op_token, /*numbers_only=*/ordering);
      if (!value.ok()) return value.status();
      node->value = *std::move(value);
      return NodePtr(std::move(node));
    }
    if (IsKeyword("IS")) {
      Take();
      node->kind = NodeKind::kIsNull;
      if (IsKeyword("NOT")) {
        Take();
        node->negated = true;
      }
      if (!IsKeyword("NULL")) return Expected(node->negated ? "NULL" : "NULL or NOT NULL");
      Take();
      return NodePtr(std::move(node));
    }
    if (IsKeyword("NOT")) {
      Take();
      node->negated = true;
    }
    if (IsKeyword("BETWEEN")) {
      Take();
      node->kind = NodeKind::kBetween;
      return ParseBetween(std::move(node));
    }
    if (IsKeyword("IN")) {
      Take();
      node->kind = NodeKind::kIn;
      return ParseIn(std::move(node));
    }
    if (IsKeyword("CONTAINS") || IsKeyword("STARTSWITH") || IsKeyword("ENDSWITH")) {
      const std::string& keyword = Take().text;
      node->kind = NodeKind::kStringMatch;
      node->match = keyword == "CONTAINS"     ? StringMatch::kContains
                    : keyword == "STARTSWITH" ? StringMatch::kStartsWith
                                              : StringMatch::kEndsWith;
      if (Peek().kind != TokenKind::kString) {
        return Expected(absl::StrCat("a string literal after ", keyword));
      }
      node->value.string = Take().text;
      return NodePtr(std::move(node));
    }
    if (node->negated) return Expected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT");
    return Expected(absl::StrCat(
        "an operator after property ", property,
        " (=, <>, !=, <, <=, >, >=, BETWEEN, IN, IS, CONTAINS, STARTSWITH or ENDSWITH)"));
  }

  // A literal after a comparison operator; `numbers_only` for <, <=, >, >=.
  absl::StatusOr<Literal> ParseLiteral(const Token& op, bool numbers_only) {
    Literal literal;
    const Token& token = Peek();
    if (token.kind == TokenKind::kMinus || token.kind == TokenKind::kPlus ||
        token.kind == TokenKind::kNumber) {
      auto number = ParseNumber();
      if (!number.ok()) return number.status();
      literal.type = Literal::Type::kNumber;
      literal.number = *number;
      return literal;
    }
    if (numbers_only &&
        (token.kind == TokenKind::kString || IsKeyword("TRUE") || IsKeyword("FALSE"))) {
      return Expected(absl::StrCat("a number ('", op.raw, "' compares numbers only)"));
    }
    if (token.kind == TokenKind::kString) {
      literal.type = Literal::Type::kString;
      literal.string = Take().text;
      return literal;
    }
    if (IsKeyword("TRUE") || IsKeyword("FALSE")) {
      literal.type = Literal::Type::kBoolean;
      literal.boolean = Take().text == "TRUE";
      return literal;
    }
    if (IsKeyword("NULL")) return Expected("a literal (compare with NULL by IS NULL)");
    return Expected("a literal");
  }

  // number := ['-' | '+'] NUMBER
  absl::StatusOr<SqlNumber> ParseNumber() {
    std::string text;
    if (Peek().kind == TokenKind::kMinus || Peek().kind == TokenKind::kPlus) {
      const Token& sign = Take();
      if (Peek().kind != TokenKind::kNumber) {
        return Expected(absl::StrCat("a number after '", sign.raw, "'"));
      }
      if (sign.kind == TokenKind::kMinus) text = "-";
    } else if (Peek().kind != TokenKind::kNumber) {
      return Expected("a number");
    }
    absl::StrAppend(&text, Take().text);
    // The lexer checked the unsigned number; a sign keeps it in range.
    return *ParseSqlNumber(text);
  }

  // BETWEEN low AND high, numbers with low <= high (RocketMQ refuses
  // reversed bounds too).
  absl::StatusOr<NodePtr> ParseBetween(std::unique_ptr<SqlNode> node) {
    const Token& low_token = Peek();
    auto low = ParseNumber();
    if (!low.ok()) return low.status();
    if (!IsKeyword("AND")) return Expected("AND between the BETWEEN bounds");
    Take();
    auto high = ParseNumber();
    if (!high.ok()) return high.status();
    const bool reversed = low->is_integer && high->is_integer ? low->integer > high->integer
                                                              : low->AsDouble() > high->AsDouble();
    if (reversed) {
      return ErrorAt(low_token,
                     "BETWEEN bounds are reversed (the low bound is above the high one)");
    }
    node->low = *low;
    node->high = *high;
    return NodePtr(std::move(node));
  }

  // IN ('a', 'b', ...)
  absl::StatusOr<NodePtr> ParseIn(std::unique_ptr<SqlNode> node) {
    if (Peek().kind != TokenKind::kLeftParen) return Expected("'(' after IN");
    Take();
    while (true) {
      if (Peek().kind != TokenKind::kString) return Expected("a string literal in the IN list");
      node->set.insert(Take().text);
      if (Peek().kind == TokenKind::kRightParen) break;
      if (Peek().kind != TokenKind::kComma) return Expected("',' or ')' in the IN list");
      Take();
    }
    Take();
    return NodePtr(std::move(node));
  }

  const absl::string_view expression_;
  const std::vector<Token> tokens_;
  size_t next_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<const SqlNode>> ParseSql(absl::string_view expression) {
  if (expression.size() > kMaxSqlLength) {
    return SqlError(expression, kMaxSqlLength + 1,
                    absl::StrCat("expression is ", expression.size(), " bytes long (limit ",
                                 kMaxSqlLength, ")"));
  }
  auto tokens = Tokenize(expression);
  if (!tokens.ok()) return tokens.status();
  Parser parser(expression, *std::move(tokens));
  return parser.ParseAll();
}

}  // namespace apogee::broker::filter
