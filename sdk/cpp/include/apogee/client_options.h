// Options every Apogee client shares.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace apogee {

// TLS to NameServers and brokers started with --tls_cert (docs/security.md).
struct TlsOptions {
  bool enabled = false;
  // PEM CA bundle that signs the servers' certificates; empty: system roots.
  std::string ca_file;
  // Optional client certificate and its key, for servers that require one
  // (--tls_client_auth=require). Both or neither.
  std::string cert_file;
  std::string key_file;
  // How often the files are re-read (certificate rotation); min 1s.
  absl::Duration reload_interval = absl::Minutes(1);
};

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
  // Plaintext unless tls.enabled.
  TlsOptions tls;
};

}  // namespace apogee
