#include "services/broker/filter/sql_filter.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace apogee::broker::filter {
namespace {

using ::testing::HasSubstr;
using Properties = std::map<std::string, std::string>;

constexpr SqlTruth T = SqlTruth::kTrue;
constexpr SqlTruth F = SqlTruth::kFalse;
constexpr SqlTruth U = SqlTruth::kUnknown;

const char* Name(SqlTruth t) { return t == T ? "TRUE" : t == F ? "FALSE" : "UNKNOWN"; }

// The message most cases are evaluated against. `missing` is absent.
const Properties& Message() {
  static const Properties* message = new Properties{
      {"a", "10"},
      {"b", "abc"},
      {"c", "TRUE"},
      {"neg", "-3.5"},
      {"big", "9223372036854775807"},
      {"s", "it's"},
      {"empty", ""},
      {"TAGS", "TagA"},
      {"$x_1", "y"},
  };
  return *message;
}

struct MatchCase {
  const char* sql;
  SqlTruth want;
};

const MatchCase kMatchCases[] = {
    // numeric comparisons: the property is converted to a number
    {"a = 10", T},
    {"a = 10.0", T},
    {"a <> 10", F},
    {"a != 11", T},
    {"a > 5", T},
    {"a >= 10", T},
    {"a < 10", F},
    {"a <= 10", T},
    {"a > -1", T},
    {"a > +5", T},
    {"a < 10.5", T},
    {"a = .5e2", F},
    {"a >= 1E1", T},
    {"neg < -3", T},
    {"neg = -3.5", T},
    {"big = 9223372036854775807", T},
    {"big > 9223372036854775806", T},  // exact for integers
    // BETWEEN is inclusive
    {"a BETWEEN 1 AND 10", T},
    {"a BETWEEN 11 AND 20", F},
    {"a NOT BETWEEN 11 AND 20", T},
    {"a NOT BETWEEN 10 AND 20", F},
    {"neg BETWEEN -4 AND -3", T},
    {"a BETWEEN 10 AND 10", T},
    // strings: exact, case-sensitive
    {"b = 'abc'", T},
    {"b = 'ABC'", F},
    {"b <> 'abc'", F},
    {"a = '10'", T},
    {"a = '10.0'", F},  // a string literal compares strings
    {"s = 'it''s'", T},
    {"empty = ''", T},
    {"b IN ('x', 'abc')", T},
    {"b NOT IN ('x', 'abc')", F},
    {"b NOT IN ('x')", T},
    {"a IN ('10')", T},
    {"TAGS = 'TagA'", T},
    {"TAGS IN ('TagA', 'TagB')", T},
    {"$x_1 = 'y'", T},
    // booleans: "true" in any case is TRUE, anything else FALSE (Java's
    // Boolean.valueOf)
    {"c = TRUE", T},
    {"c = FALSE", F},
    {"b = FALSE", T},
    {"c <> true", F},
    {"TRUE", T},
    {"FALSE", F},
    {"NOT FALSE", T},
    // NULL: a missing property
    {"missing IS NULL", T},
    {"a IS NULL", F},
    {"a IS NOT NULL", T},
    {"missing IS NOT NULL", F},
    {"empty IS NULL", F},
    {"missing = 1", U},
    {"missing <> 'x'", U},
    {"NOT missing = 1", U},
    {"missing IN ('x')", U},
    {"missing NOT IN ('x')", U},
    {"missing BETWEEN 1 AND 2", U},
    {"missing = 1 OR a = 10", T},
    {"missing = 1 AND a = 10", U},
    {"missing = 1 AND a = 11", F},
    {"missing > 1 OR b = 'x'", U},
    // a property that is not a number: a numeric comparison is UNKNOWN
    {"b > 5", U},
    {"NOT b > 5", U},
    {"b = 5", U},
    {"b BETWEEN 1 AND 2", U},
    {"b NOT BETWEEN 1 AND 2", U},
    {"empty = 0", U},
    {"b > 5 OR a = 10", T},
    // precedence: NOT > AND > OR; parentheses
    {"a = 10 OR a = 1 AND b = 'x'", T},
    {"(a = 10 OR a = 1) AND b = 'x'", F},
    {"NOT a = 1 AND b = 'abc'", T},
    {"NOT (a = 10 AND b = 'abc')", F},
    {"NOT NOT a = 10", T},
    {"((a = 10))", T},
    {"a = 1 OR b = 'x' OR c = TRUE", T},
    {"a = 10 AND b = 'abc' AND c = TRUE AND TAGS = 'TagA'", T},
    // string functions (RocketMQ 5): a missing property or '' is FALSE
    {"b CONTAINS 'b'", T},
    {"b STARTSWITH 'ab'", T},
    {"b ENDSWITH 'bc'", T},
    {"b ENDSWITH 'ab'", F},
    {"b NOT CONTAINS 'z'", T},
    {"b NOT STARTSWITH 'a'", F},
    {"missing CONTAINS 'a'", F},
    {"missing NOT CONTAINS 'a'", F},
    {"b CONTAINS ''", F},
    {"NOT missing CONTAINS 'a'", T},
    // keywords in any case, white space, comments
    {"a = 10 and b = 'abc'", T},
    {"a between 1 And 10", T},
    {"b not in ('x')", T},
    {"missing is null", T},
    {"b contains 'c' or false", T},
    {"a\t=\n10", T},
    {"a = 10 /* comment */ AND b = 'abc' -- trailing", T},
};

TEST(SqlFilterTest, EvaluatesTheTable) {
  const MapLookup<Properties> lookup(Message());
  for (const MatchCase& c : kMatchCases) {
    auto filter = CompileSql(c.sql);
    ASSERT_TRUE(filter.ok()) << c.sql << ": " << filter.status();
    const SqlTruth got = (*filter)->Evaluate(lookup);
    EXPECT_EQ(got, c.want) << c.sql << ": got " << Name(got) << ", want " << Name(c.want);
    EXPECT_EQ((*filter)->Matches(lookup), c.want == T) << c.sql;
    EXPECT_EQ((*filter)->expression(), c.sql);
  }
}

struct ErrorCase {
  const char* sql;
  int position;
  const char* what;  // a part of the message after the position
};

const ErrorCase kErrorCases[] = {
    {"a = ", 5, "expected a literal, got end of input"},
    {"", 1, "expected a property name, '(', NOT, TRUE or FALSE, got end of input"},
    {"   ", 4, "expected a property name"},
    {"a", 2, "expected an operator after property a (=, <>, !="},
    {"a = 'x", 5, "unterminated string literal"},
    {"a > 'x'", 5, "expected a number ('>' compares numbers only), got string 'x'"},
    {"a <= TRUE", 6, "compares numbers only"},
    {"a BETWEEN 1", 12, "expected AND between the BETWEEN bounds"},
    {"a BETWEEN 5 AND 1", 11, "BETWEEN bounds are reversed"},
    {"a BETWEEN 'a' AND 'b'", 11, "expected a number, got string 'a'"},
    {"a IN ()", 7, "expected a string literal in the IN list, got ')'"},
    {"a IN ('x' 'y')", 11, "expected ',' or ')' in the IN list"},
    {"a IN ('x',", 11, "expected a string literal in the IN list, got end of input"},
    {"a IN (1, 2)", 7, "got number 1"},
    {"a IN 'x'", 6, "expected '(' after IN"},
    {"(a = 1", 7, "expected AND, OR or ')', got end of input"},
    {"a = 1)", 6, "expected AND, OR or end of input, got ')'"},
    {"a = 1 b = 2", 7, "expected AND, OR or end of input, got 'b'"},
    {"a == 1", 4, "expected a literal, got '='"},
    {"a = \"x\"", 5, "string literals are single-quoted"},
    {"a ! 1", 3, "unexpected character '!'"},
    {"a = 1 AND", 10, "expected a property name, '(', NOT, TRUE or FALSE"},
    {"a = NULL", 5, "IS NULL"},
    {"a IS 1", 6, "expected NULL or NOT NULL, got number 1"},
    {"a IS NOT 1", 10, "expected NULL, got number 1"},
    {"a NOT 5", 7, "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT"},
    {"a = 5abc", 5, "malformed number '5abc'"},
    {"a = 10L", 5, "malformed number '10L'"},
    {"a = 1.2.3", 5, "malformed number"},
    {"a = 1e", 5, "malformed number '1e'"},
    {"a = -", 6, "expected a number after '-'"},
    {"a = - 'x'", 7, "expected a number after '-'"},
    {"a = 1e999", 5, "out of range"},
    {"= 1", 1, "expected a property name"},
    {"1 = a", 1, "expected a property name, '(', NOT, TRUE or FALSE, got number 1"},
    {"'a' = a", 1, "got string 'a'"},
    {"a = 1 /* x", 7, "unterminated comment"},
    {"a CONTAINS 1", 12, "expected a string literal after CONTAINS"},
    {"a = 1 OR OR b = 2", 10, "got 'OR'"},
    {"a = @", 5, "unexpected character '@'"},
    {"a = \x01", 5, "unexpected character '\\x01'"},
    {"NOT", 4, "got end of input"},
    {"a IN ('x') AND", 15, "expected a property name"},
    {"TRUE = a", 6, "expected AND, OR or end of input, got '='"},
    {"a = b", 5, "expected a literal, got 'b'"},
};

TEST(SqlFilterTest, RefusesMalformedExpressionsNamingThePosition) {
  for (const ErrorCase& c : kErrorCases) {
    auto filter = CompileSql(c.sql);
    ASSERT_FALSE(filter.ok()) << c.sql;
    EXPECT_EQ(filter.status().code(), absl::StatusCode::kInvalidArgument) << c.sql;
    EXPECT_THAT(filter.status().message(),
                HasSubstr(absl::StrCat(" at position ", c.position, ": ")))
        << c.sql;
    EXPECT_THAT(filter.status().message(), HasSubstr(c.what)) << c.sql;
  }
}

// Every expression of the table with one byte deleted, or one of a few
// bytes inserted, at each place: compiles, or fails naming a position inside
// the expression (or just past it), and never crashes.
TEST(SqlFilterTest, MutatedExpressionsFailCleanly) {
  const MapLookup<Properties> lookup(Message());
  int compiled = 0, refused = 0;
  auto check = [&](const std::string& sql) {
    auto filter = CompileSql(sql);
    if (filter.ok()) {
      (*filter)->Evaluate(lookup);
      ++compiled;
      return;
    }
    ++refused;
    const absl::string_view message = filter.status().message();
    const size_t at = message.find(" at position ");
    ASSERT_NE(at, absl::string_view::npos) << sql << ": " << message;
    absl::string_view rest = message.substr(at + 13);
    int position = 0;
    ASSERT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find(':')), &position)) << message;
    EXPECT_GE(position, 1) << sql;
    EXPECT_LE(position, static_cast<int>(sql.size()) + 1) << sql;
  };
  for (const MatchCase& c : kMatchCases) {
    const std::string sql = c.sql;
    for (size_t i = 0; i <= sql.size(); ++i) {
      if (i < sql.size()) check(sql.substr(0, i) + sql.substr(i + 1));
      for (const char* insert : {"'", "(", ")", "-", "1", ".", "x", "=", "\x80"}) {
        check(sql.substr(0, i) + insert + sql.substr(i));
      }
    }
  }
  EXPECT_GT(compiled, 0);
  EXPECT_GT(refused, 0);
}

TEST(SqlFilterTest, ErrorQuotesTheExpression) {
  EXPECT_EQ(CompileSql("a = ").status().message(),
            "SQL filter \"a = \" at position 5: expected a literal, got end of input");
  const std::string tail = std::string(100, ' ') + "?";
  auto status = CompileSql("a = 1" + tail).status();
  EXPECT_THAT(status.message(), HasSubstr("...\" at position 106: unexpected character '?'"));
}

TEST(SqlFilterTest, TableHasEnoughCases) {
  EXPECT_GE(std::size(kMatchCases) + std::size(kErrorCases), 60u);
}

TEST(SqlFilterTest, EveryComparisonOfAMissingPropertyIsUnknownButIsNull) {
  const Properties none;
  const MapLookup<Properties> lookup(none);
  for (const char* sql :
       {"x = 1", "x <> 1", "x < 1", "x <= 1", "x > 1", "x >= 1", "x = 'a'", "x <> 'a'", "x = TRUE",
        "x IN ('a')", "x NOT IN ('a')", "x BETWEEN 1 AND 2", "x NOT BETWEEN 1 AND 2"}) {
    auto filter = CompileSql(sql);
    ASSERT_TRUE(filter.ok()) << sql;
    EXPECT_EQ((*filter)->Evaluate(lookup), U) << sql;
    auto negated = CompileSql(absl::StrCat("NOT (", sql, ")"));
    ASSERT_TRUE(negated.ok()) << sql;
    EXPECT_EQ((*negated)->Evaluate(lookup), U) << "NOT " << sql;
    EXPECT_FALSE((*negated)->Matches(lookup)) << "NOT " << sql;
  }
  EXPECT_TRUE((*CompileSql("x IS NULL"))->Matches(lookup));
  EXPECT_FALSE((*CompileSql("x IS NOT NULL"))->Matches(lookup));
}

TEST(SqlFilterTest, ThreeValuedLogic) {
  const Properties props{{"t", "1"}};
  const MapLookup<Properties> lookup(props);
  // t = 1 is TRUE, t = 2 FALSE, u = 1 UNKNOWN (u is missing).
  const struct {
    const char* sql;
    SqlTruth want;
  } cases[] = {
      {"t = 1 AND u = 1", U},      {"t = 2 AND u = 1", F},       {"u = 1 AND t = 2", F},
      {"t = 1 OR u = 1", T},       {"t = 2 OR u = 1", U},        {"u = 1 OR t = 1", T},
      {"NOT (t = 2 OR u = 1)", U}, {"NOT (t = 2 AND u = 1)", T},
  };
  for (const auto& c : cases) {
    EXPECT_EQ((*CompileSql(c.sql))->Evaluate(lookup), c.want) << c.sql;
  }
}

TEST(SqlFilterTest, LengthLimit) {
  std::string sql = "a = 1";
  while (sql.size() + 9 <= kMaxSqlLength) sql += " OR a = 1";
  sql.resize(kMaxSqlLength, ' ');
  auto longest = CompileSql(sql);
  ASSERT_TRUE(longest.ok()) << longest.status();
  EXPECT_FALSE((*longest)->Matches(MapLookup<Properties>(Message())));

  sql.push_back(' ');
  auto status = CompileSql(sql).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("at position 4097: expression is 4097 bytes long (limit 4096)"));
}

TEST(SqlFilterTest, DepthLimit) {
  auto nested = [](int parens, int nots) {
    std::string sql;
    for (int i = 0; i < nots; ++i) sql += "NOT ";
    sql += std::string(parens, '(') + "a = 10" + std::string(parens, ')');
    return sql;
  };
  const MapLookup<Properties> lookup(Message());
  auto deepest = CompileSql(nested(kMaxSqlDepth, 0));
  ASSERT_TRUE(deepest.ok()) << deepest.status();
  EXPECT_TRUE((*deepest)->Matches(lookup));
  auto mixed = CompileSql(nested(kMaxSqlDepth / 2, kMaxSqlDepth / 2));
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_TRUE((*mixed)->Matches(lookup));  // an even number of NOTs

  for (const auto& [parens, nots] : {std::pair{kMaxSqlDepth + 1, 0}, std::pair{0, kMaxSqlDepth + 1},
                                     std::pair{kMaxSqlDepth / 2 + 1, kMaxSqlDepth / 2}}) {
    auto status = CompileSql(nested(parens, nots)).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << parens << " " << nots;
    EXPECT_THAT(status.message(),
                HasSubstr("nesting of parentheses and NOT is deeper than 64 (limit 64)"));
  }
  // Siblings do not add up: depth is how deep, not how many.
  std::string wide = "(a = 1)";
  for (int i = 0; i < 2 * kMaxSqlDepth; ++i) wide += " OR (NOT a = 1)";
  EXPECT_TRUE(CompileSql(wide).ok());
}

TEST(SqlFilterTest, LongChainsEvaluate) {
  std::string sql = "a = 0";
  for (int i = 1; i <= 300; ++i) absl::StrAppend(&sql, " OR a = ", i);
  auto filter = CompileSql(sql);
  ASSERT_TRUE(filter.ok()) << filter.status();
  EXPECT_TRUE((*filter)->Matches(MapLookup<Properties>(Message())));
  EXPECT_FALSE((*filter)->Matches(MapLookup<Properties>(Properties{{"a", "301"}})));
}

TEST(SqlFilterTest, OneFilterEvaluatesOnManyThreads) {
  auto filter = CompileSql("a BETWEEN 0 AND 499 AND b IN ('even') OR c IS NULL");
  ASSERT_TRUE(filter.ok());
  std::vector<std::thread> threads;
  std::vector<int> matched(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        const Properties props{
            {"a", std::to_string(i)}, {"b", i % 2 == 0 ? "even" : "odd"}, {"c", "x"}};
        if ((*filter)->Matches(MapLookup<Properties>(props))) ++matched[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int m : matched) EXPECT_EQ(m, 250);
}

// The tags a reader may ask the store for: a superset of the tags of every
// message the expression can be TRUE for.
TEST(SqlFilterTest, RequiredTags) {
  struct Case {
    const char* sql;
    std::vector<std::string> tags;  // empty: nullopt (any tag)
  };
  const Case cases[] = {
      {"TAGS = 'A'", {"A"}},
      {"TAGS IN ('B', 'A', 'B')", {"A", "B"}},
      {"a > 5 AND TAGS = 'A'", {"A"}},
      {"TAGS IN ('A', 'B') AND TAGS IN ('B', 'C')", {"B"}},
      {"TAGS = 'A' AND TAGS = 'B'", {"A"}},  // never TRUE: one set is still safe
      {"TAGS = 'A' OR (TAGS = 'B' AND b = 1)", {"A", "B"}},
      {"(TAGS = 'A' OR TAGS = 'C') AND a = 1", {"A", "C"}},
      {"TAGS = 'A' OR a = 1", {}},
      {"TAGS <> 'A'", {}},
      {"TAGS NOT IN ('A')", {}},
      {"NOT (TAGS = 'A')", {}},
      {"TAGS IS NULL", {}},
      {"TAGS STARTSWITH 'A'", {}},
      {"tags = 'A'", {}},  // property names are case-sensitive
      {"a = 1", {}},
  };
  for (const Case& c : cases) {
    auto filter = CompileSql(c.sql);
    ASSERT_TRUE(filter.ok()) << c.sql << ": " << filter.status();
    if (c.tags.empty()) {
      EXPECT_FALSE((*filter)->required_tags().has_value()) << c.sql;
    } else {
      ASSERT_TRUE((*filter)->required_tags().has_value()) << c.sql;
      EXPECT_EQ(*(*filter)->required_tags(), c.tags) << c.sql;
    }
  }
}

TEST(SqlNumberTest, ParsesOnlyPlainNumbers) {
  EXPECT_EQ(ParseSqlNumber("-9223372036854775808")->integer, INT64_MIN);
  EXPECT_FALSE(ParseSqlNumber("9223372036854775808")->is_integer);  // a double then
  EXPECT_DOUBLE_EQ(ParseSqlNumber("2.5E-1")->real, 0.25);
  EXPECT_DOUBLE_EQ(ParseSqlNumber("5.")->real, 5.0);
  for (const char* text : {"", "-", "+", ".", " 1", "1 ", "0x10", "NaN", "Infinity", "1e", "1e+",
                           "1L", "1,5", "--1", "1e999"}) {
    EXPECT_FALSE(ParseSqlNumber(text).has_value()) << text;
  }
}

}  // namespace
}  // namespace apogee::broker::filter
