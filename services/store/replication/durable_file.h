// Small state files of the replication module (epoch history, role) written
// so that a crash leaves either the old or the new contents, never a mix.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace apogee::store {

// Writes `contents` to `path` atomically and durably: a temp file in the same
// directory, fsync, rename over `path`, fsync of the directory.
absl::Status WriteFileDurably(const std::string& path, const std::string& contents);

// The whole file, or nullopt when it does not exist.
absl::StatusOr<std::optional<std::string>> ReadSmallFile(const std::string& path);

}  // namespace apogee::store
