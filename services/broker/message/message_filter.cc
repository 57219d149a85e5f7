#include "services/broker/message/message_filter.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/broker/message/validation.h"
#include "services/common/status/status_macros.h"
#include "services/common/status/v2_status.h"

namespace apogee::broker {
namespace {

// Records a SQL-filtered read asks the store for at least: enough to find a
// match among many others in one round trip, few enough that a read stays
// small (records are read in full to evaluate their properties).
constexpr int kSqlReadAhead = 64;

absl::Status Illegal(const absl::Status& status) {
  return WithV2Code(absl::InvalidArgumentError(status.message()), v2::ILLEGAL_FILTER_EXPRESSION);
}

}  // namespace

void MessageFilter::NarrowRead(store::v1::ReadRequest* read) const {
  for (const std::string& tag : tags_) read->add_tags(tag);
}

int MessageFilter::RecordsToRead(int wanted) const {
  return sql_ == nullptr ? wanted : std::max(wanted, kSqlReadAhead);
}

bool MessageFilter::Matches(const v2::Message& message) const {
  if (!MatchesTag(message.system_properties().tag())) return false;
  return sql_ == nullptr || sql_->Matches(MessageProperties(message));
}

bool MessageFilter::MatchesTag(absl::string_view tag) const {
  return tags_.empty() || std::find(tags_.begin(), tags_.end(), tag) != tags_.end();
}

absl::StatusOr<MessageFilter> MessageFilter::Parse(const v2::FilterExpression& expression,
                                                   filter::SqlFilterCache* cache) {
  APOGEE_RETURN_IF_ERROR(ValidateFilterType(expression));
  MessageFilter filter;
  if (expression.type() == v2::SQL) {
    // An empty SQL expression is an error (expected a property name), not
    // "everything": the client asked for SQL and sent nothing.
    auto sql = cache != nullptr ? cache->Get(expression.expression())
                                : filter::CompileSql(expression.expression());
    if (!sql.ok()) return Illegal(sql.status());
    filter.sql_ = *std::move(sql);
    // Tags the expression requires (TAGS = 'x' AND ...): the store skips
    // other tags by its index, without reading their bodies.
    if (filter.sql_->required_tags().has_value()) filter.tags_ = *filter.sql_->required_tags();
    return filter;
  }
  std::string text(absl::StripAsciiWhitespace(expression.expression()));
  if (text.empty() || text == "*") return filter;
  for (absl::string_view part : absl::StrSplit(text, "||")) {
    std::string tag(absl::StripAsciiWhitespace(part));
    if (tag.empty()) {
      return WithV2Code(
          absl::InvalidArgumentError(absl::StrCat(
              "filter expression \"", text, "\" has an empty tag (want \"*\" or \"TagA||TagB\")")),
          v2::ILLEGAL_FILTER_EXPRESSION);
    }
    if (tag == "*") return MessageFilter();
    filter.tags_.push_back(std::move(tag));
  }
  return filter;
}

std::optional<absl::string_view> MessageProperties::Get(absl::string_view name) const {
  if (name == "TAGS") {
    const v2::SystemProperties& sp = message_.system_properties();
    if (!sp.has_tag() || sp.tag().empty()) return std::nullopt;
    return absl::string_view(sp.tag());
  }
  const auto& properties = message_.user_properties();
  auto it = properties.find(std::string(name));
  if (it == properties.end()) return std::nullopt;
  return absl::string_view(it->second);
}

}  // namespace apogee::broker
