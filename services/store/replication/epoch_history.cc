#include "services/store/replication/epoch_history.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/status/status_macros.h"
#include "services/store/replication/durable_file.h"

namespace apogee::store {
namespace {

constexpr absl::string_view kHeader = "apogee-epoch-history v1";

}  // namespace

absl::StatusOr<std::unique_ptr<EpochHistory>> EpochHistory::Open(std::string path) {
  std::unique_ptr<EpochHistory> history(new EpochHistory(std::move(path)));
  APOGEE_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadSmallFile(history->path_));
  if (!text.has_value()) return history;
  std::vector<EpochEntry> entries;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    ++line_number;
    if (line_number == 1) {
      if (line != kHeader) {
        return absl::DataLossError(absl::StrCat("epoch history ", history->path_,
                                                " does not start with \"", kHeader, "\""));
      }
      continue;
    }
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    EpochEntry entry;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &entry.epoch) ||
        !absl::SimpleAtoi(fields[1], &entry.start_offset)) {
      return absl::DataLossError(absl::StrCat("epoch history ", history->path_, " line ",
                                              line_number, " \"", line,
                                              "\" is not \"EPOCH START_OFFSET\""));
    }
    entries.push_back(entry);
  }
  if (absl::Status s = Validate(entries); !s.ok()) {
    return absl::DataLossError(absl::StrCat("epoch history ", history->path_, ": ", s.message()));
  }
  absl::MutexLock lock(&history->mu_);
  history->entries_ = std::move(entries);
  return history;
}

absl::Status EpochHistory::Validate(const std::vector<EpochEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].epoch < 0 || entries[i].start_offset < 0) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", i, " (epoch ", entries[i].epoch,
                                                     " at offset ", entries[i].start_offset,
                                                     ") is negative"));
    }
    if (i > 0 && (entries[i].epoch <= entries[i - 1].epoch ||
                  entries[i].start_offset < entries[i - 1].start_offset)) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry ", i, " (epoch ", entries[i].epoch, " at offset ",
                       entries[i].start_offset, ") does not follow epoch ", entries[i - 1].epoch,
                       " at offset ", entries[i - 1].start_offset));
    }
  }
  return absl::OkStatus();
}

absl::Status EpochHistory::Persist(const std::vector<EpochEntry>& entries) {
  std::string text = absl::StrCat(kHeader, "\n");
  for (const EpochEntry& e : entries) absl::StrAppend(&text, e.epoch, " ", e.start_offset, "\n");
  return WriteFileDurably(path_, text);
}

std::vector<EpochEntry> EpochHistory::entries() const {
  absl::MutexLock lock(&mu_);
  return entries_;
}

EpochEntry EpochHistory::Latest() const {
  absl::MutexLock lock(&mu_);
  return entries_.empty() ? EpochEntry{} : entries_.back();
}

absl::Status EpochHistory::Append(EpochEntry entry) {
  absl::MutexLock lock(&mu_);
  if (!entries_.empty() && entries_.back() == entry) return absl::OkStatus();
  std::vector<EpochEntry> next = entries_;
  next.push_back(entry);
  APOGEE_RETURN_IF_ERROR(Validate(next));
  APOGEE_RETURN_IF_ERROR(Persist(next));
  entries_ = std::move(next);
  return absl::OkStatus();
}

EpochEntry EpochHistory::EndOf(int64_t epoch, int64_t log_end) const {
  absl::MutexLock lock(&mu_);
  if (entries_.empty()) return {0, log_end};
  // The last entry at or below `epoch`.
  size_t at = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].epoch <= epoch) at = i;
  }
  if (at == entries_.size()) {
    // Every epoch we know is later: nothing of the follower's is ours
    // beyond where our first epoch began.
    return {epoch, entries_.front().start_offset};
  }
  if (at + 1 == entries_.size()) return {entries_[at].epoch, log_end};
  return {entries_[at].epoch, entries_[at + 1].start_offset};
}

absl::Status EpochHistory::Replace(std::vector<EpochEntry> entries) {
  APOGEE_RETURN_IF_ERROR(Validate(entries));
  absl::MutexLock lock(&mu_);
  if (entries == entries_) return absl::OkStatus();
  APOGEE_RETURN_IF_ERROR(Persist(entries));
  entries_ = std::move(entries);
  return absl::OkStatus();
}

absl::Status EpochHistory::TruncateFrom(int64_t offset) {
  absl::MutexLock lock(&mu_);
  std::vector<EpochEntry> next = entries_;
  while (next.size() > 1 && next.back().start_offset >= offset) next.pop_back();
  if (next == entries_) return absl::OkStatus();
  APOGEE_RETURN_IF_ERROR(Persist(next));
  entries_ = std::move(next);
  return absl::OkStatus();
}

}  // namespace apogee::store
