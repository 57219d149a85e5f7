// Options every Apogee client shares.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace apogee {

struct ClientOptions {
  // NameServer addresses ("host:port"); at least one. Routes come from the
  // first that answers.
  std::vector<std::string> endpoints;
  // A route older than this is fetched again in the background, and soon
  // after a failed call; the cached route serves meanwhile, also while every
  // NameServer is down (failed refreshes are retried with backoff up to
  // this interval). Min 100ms.
  absl::Duration route_refresh = absl::Seconds(30);
  // Deadline of control calls (routes, acks, offsets).
  absl::Duration request_timeout = absl::Seconds(3);
  // Stable id of this client instance (sent as x-mq-client-id); generated
  // ("<host>@<pid>@<random>") when empty.
  std::string client_id;
  // Credentials for brokers with --auth (a user made with `apogee-admin
  // user create`): every call is signed as the official clients sign
  // (HMAC-SHA1 of x-mq-date-time). Empty access_key: calls are unsigned.
  std::string access_key;
  std::string access_secret;
};

}  // namespace apogee
