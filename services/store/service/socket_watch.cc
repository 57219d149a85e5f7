#include "services/store/service/socket_watch.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace apogee::store {

absl::StatusOr<SocketWatch> SocketWatch::Create(std::string path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot watch socket ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot watch ", path, ": not a socket"));
  }
  return SocketWatch(std::move(path), st.st_dev, st.st_ino);
}

std::optional<std::string> SocketWatch::Check() {
  if (reported_) return std::nullopt;
  struct stat st;
  std::string reason;
  if (::lstat(path_.c_str(), &st) != 0) {
    reason = absl::StrCat("socket file is gone (", std::strerror(errno), ")");
  } else if (st.st_dev != device_ || st.st_ino != inode_) {
    reason = S_ISSOCK(st.st_mode) ? "socket file was replaced by another socket"
                                  : "socket file was replaced by a file that is not a socket";
  } else {
    return std::nullopt;
  }
  reported_ = true;
  return reason;
}

}  // namespace apogee::store
