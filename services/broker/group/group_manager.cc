#include "services/broker/group/group_manager.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/naming/names.h"
#include "services/common/status/status_macros.h"

namespace apogee::broker {
namespace {

namespace av1 = ::apogee::admin::v1;
// "%" + 16 hex digits appended to broadcasting group names.
constexpr int kMemberSuffix = 17;

// FNV-1a: stable across processes and restarts (std::hash is not promised
// to be), so a member keeps its progress when the broker restarts.
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

absl::Status GroupManager::Load() { return Reload(); }  // empty at start-up: the same

absl::Status GroupManager::Reload() {
  APOGEE_ASSIGN_OR_RETURN(std::vector<store::v1::Group> stored, store_->ListGroups());
  std::map<std::string, ConsumerGroup> groups;
  for (const store::v1::Group& g : stored) {
    if (absl::StartsWith(g.name(), kReservedGroupPrefix)) continue;  // auth records
    if (!groups[g.name()].ParseFromString(g.config())) {
      return absl::DataLossError(
          absl::StrCat("stored group \"", g.name(), "\" has a config that does not parse"));
    }
  }
  absl::MutexLock lock(&mu_);
  groups_ = std::move(groups);
  return absl::OkStatus();
}

absl::Status GroupManager::Put(const ConsumerGroup& input) {
  ConsumerGroup group = input;
  APOGEE_RETURN_IF_ERROR(ValidateGroupName("group.name", group.name()));
  if (absl::StartsWith(group.name(), kReservedGroupPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat("group.name \"", group.name(),
                                                   "\" starts with the reserved \"",
                                                   kReservedGroupPrefix, "\""));
  }
  if (group.consume_mode() == av1::CONSUME_MODE_UNSPECIFIED) {
    group.set_consume_mode(av1::CONSUME_MODE_CLUSTERING);
  }
  if (!av1::ConsumeMode_IsValid(group.consume_mode())) {
    return absl::InvalidArgumentError(absl::StrCat("group.consume_mode of \"", group.name(),
                                                   "\" is unknown value ", group.consume_mode()));
  }
  if (group.consume_mode() == av1::CONSUME_MODE_BROADCASTING &&
      static_cast<int>(group.name().size()) > kMaxGroupNameLength - kMemberSuffix) {
    return absl::InvalidArgumentError(
        absl::StrCat("broadcasting group \"", group.name(), "\" is ", group.name().size(),
                     " chars long (max ", kMaxGroupNameLength - kMemberSuffix,
                     " so per-member names fit in ", kMaxGroupNameLength, ")"));
  }
  store::v1::Group stored;
  stored.set_name(group.name());
  stored.set_config(group.SerializeAsString());
  APOGEE_RETURN_IF_ERROR(store_->PutGroup(stored));
  absl::MutexLock lock(&mu_);
  groups_[group.name()] = group;
  return absl::OkStatus();
}

absl::Status GroupManager::Delete(const std::string& name) {
  APOGEE_RETURN_IF_ERROR(Find(name).status());
  APOGEE_RETURN_IF_ERROR(store_->DeleteGroup(name));
  absl::MutexLock lock(&mu_);
  groups_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<ConsumerGroup> GroupManager::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) {
    return absl::NotFoundError(absl::StrCat("group \"", name, "\" is not configured"));
  }
  return it->second;
}

ConsumerGroup GroupManager::Get(const std::string& name) const {
  auto found = Find(name);
  if (found.ok()) return *found;
  ConsumerGroup group;
  group.set_name(name);
  group.set_consume_mode(av1::CONSUME_MODE_CLUSTERING);
  return group;
}

std::vector<ConsumerGroup> GroupManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ConsumerGroup> out;
  for (const auto& [name, group] : groups_) out.push_back(group);
  return out;
}

std::string GroupManager::ProgressKey(const std::string& group,
                                      const std::string& client_id) const {
  if (Get(group).consume_mode() != av1::CONSUME_MODE_BROADCASTING) return group;
  return MemberProgressKey(group, client_id);
}

std::string GroupManager::MemberProgressKey(const std::string& group,
                                            const std::string& client_id) {
  return absl::StrFormat("%s%%%016x", group, Fnv1a(client_id));
}

}  // namespace apogee::broker
