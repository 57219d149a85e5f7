// Notices when the unix socket file the store listens on disappears (a
// cleanup script or an operator removed /tmp/apogee-store.sock) or is
// replaced by another file. The listening socket keeps working, but nobody
// can connect to it by path any more, so the broker sees the store as gone.
// The file is not re-created: a socket file cannot be re-linked to a
// listening socket, and binding a new one would need a second gRPC server;
// restarting the store is the fix, and the log line says so.
// Not thread-safe: one thread calls Check().
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace apogee::store {

class SocketWatch {
 public:
  // Remembers which file `path` is now (device and inode); FAILED_PRECONDITION
  // when it is not a socket.
  static absl::StatusOr<SocketWatch> Create(std::string path);

  // The reason the first time the file is found gone or replaced; nullopt
  // before that and on every later call (report once).
  std::optional<std::string> Check();

  const std::string& path() const { return path_; }

 private:
  SocketWatch(std::string path, dev_t device, ino_t inode)
      : path_(std::move(path)), device_(device), inode_(inode) {}

  std::string path_;
  dev_t device_;
  ino_t inode_;
  bool reported_ = false;
};

}  // namespace apogee::store
