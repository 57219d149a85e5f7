// A broker stand-in for tests: one GroupController in its own process, so a
// test can SIGKILL a master the way a machine dies (no lease revoke).
//
// usage: broker_controller_probe ENDPOINTS CLUSTER GROUP ID LOG_END [IN_SYNC_IDS]
//   IN_SYNC_IDS: comma-separated broker ids reported as in sync while master.
// The broker's endpoints are 127.0.0.1:(8000 + ID) for clients and
// 127.0.0.1:(9000 + ID) for HA. Prints one line per role change.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "services/broker/controller/group_controller.h"

int main(int argc, char** argv) {
  using apogee::controller::CandidateInfo;
  using apogee::controller::GroupController;
  using apogee::controller::RoleChange;
  int64_t id = 0;
  int64_t log_end = 0;
  if (argc < 6 || !absl::SimpleAtoi(argv[4], &id) || !absl::SimpleAtoi(argv[5], &log_end)) {
    std::fprintf(stderr, "usage: %s ENDPOINTS CLUSTER GROUP ID LOG_END [IN_SYNC_IDS]\n", argv[0]);
    return 2;
  }
  std::vector<int64_t> in_sync;
  if (argc > 6) {
    for (absl::string_view part : absl::StrSplit(argv[6], ',', absl::SkipEmpty())) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(part, &v)) {
        std::fprintf(stderr, "IN_SYNC_IDS \"%s\": \"%s\" is not a broker id\n", argv[6],
                     std::string(part).c_str());
        return 2;
      }
      in_sync.push_back(v);
    }
  }
  apogee::controller::GroupControllerOptions options;
  options.endpoints = argv[1];
  options.cluster = argv[2];
  options.broker_name = argv[3];
  options.broker_id = id;
  options.client_endpoint = absl::StrCat("127.0.0.1:", 8000 + id);
  options.ha_endpoint = absl::StrCat("127.0.0.1:", 9000 + id);
  apogee::controller::GroupControllerCallbacks callbacks;
  callbacks.candidate = [log_end] { return CandidateInfo{log_end, 0}; };
  callbacks.in_sync = [in_sync] { return in_sync; };
  callbacks.on_role = [](const RoleChange& change) {
    std::printf("role=%s epoch=%lld master=%lld\n", apogee::controller::RoleName(change.role),
                static_cast<long long>(change.epoch),
                static_cast<long long>(change.master_broker_id));
    std::fflush(stdout);
    return absl::OkStatus();
  };
  auto controller = GroupController::Create(std::move(options), std::move(callbacks));
  if (!controller.ok()) {
    std::fprintf(stderr, "%s\n", controller.status().ToString().c_str());
    return 1;
  }
  (*controller)->Start();
  while (true) absl::SleepFor(absl::Hours(1));  // until killed
}
