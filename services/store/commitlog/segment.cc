#include "services/store/commitlog/segment.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/status/status_macros.h"

namespace apogee::store {
namespace {
constexpr absl::string_view kSuffix = ".log";
constexpr size_t kDigits = 20;
}  // namespace

std::string Segment::FileName(int64_t start_offset) {
  return absl::StrFormat("%020d%s", start_offset, kSuffix);
}

std::optional<int64_t> Segment::ParseFileName(absl::string_view name) {
  if (name.size() != kDigits + kSuffix.size() || !absl::EndsWith(name, kSuffix)) {
    return std::nullopt;
  }
  const absl::string_view digits = name.substr(0, kDigits);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int64_t offset = 0;
  if (!absl::SimpleAtoi(digits, &offset)) return std::nullopt;
  return offset;
}

absl::StatusOr<std::shared_ptr<Segment>> Segment::Open(FileSystem* fs, const std::string& dir,
                                                       int64_t start_offset, uint64_t size,
                                                       bool writable) {
  const std::string path = JoinPath(dir, FileName(start_offset));
  std::shared_ptr<WritableFile> writer;
  if (writable) {
    APOGEE_ASSIGN_OR_RETURN(writer, fs->OpenForAppend(path));
  }
  APOGEE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> reader, fs->OpenForRead(path));
  return std::shared_ptr<Segment>(
      new Segment(path, start_offset, size, std::move(reader), std::move(writer)));
}

Segment::Segment(std::string path, int64_t start, uint64_t size,
                 std::unique_ptr<RandomAccessFile> reader, std::shared_ptr<WritableFile> writer)
    : path_(std::move(path)),
      start_(start),
      end_(start + static_cast<int64_t>(size)),
      reader_(std::move(reader)),
      writer_(std::move(writer)) {}

bool Segment::sealed() const {
  absl::MutexLock lock(&mu_);
  return writer_ == nullptr;
}

absl::StatusOr<std::shared_ptr<WritableFile>> Segment::Writer() const {
  absl::MutexLock lock(&mu_);
  if (writer_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("segment ", path_, " is sealed"));
  }
  return writer_;
}

absl::StatusOr<absl::string_view> Segment::Read(int64_t offset, size_t n, char* scratch) const {
  return reader_->Read(static_cast<uint64_t>(offset - start_), n, scratch);
}

absl::Status Segment::Append(absl::string_view data) {
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<WritableFile> writer, Writer());
  return writer->Append(data);
}

absl::Status Segment::TruncateTo(int64_t offset) {
  APOGEE_ASSIGN_OR_RETURN(std::shared_ptr<WritableFile> writer, Writer());
  return writer->Truncate(static_cast<uint64_t>(offset - start_));
}

absl::Status Segment::Sync() {
  std::shared_ptr<WritableFile> writer;
  {
    absl::MutexLock lock(&mu_);
    writer = writer_;
  }
  return writer == nullptr ? absl::OkStatus() : writer->Sync();
}

absl::Status Segment::Seal() {
  APOGEE_RETURN_IF_ERROR(Sync());
  absl::MutexLock lock(&mu_);
  writer_.reset();
  return absl::OkStatus();
}

}  // namespace apogee::store
