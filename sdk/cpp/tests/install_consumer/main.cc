// Links the installed SDK and checks that bad options fail cleanly, without
// any server.
#include <cstdio>

#include "apogee/apogee.h"

int main() {
  apogee::ProducerOptions options;  // no endpoints: must fail
  auto producer = apogee::Producer::Create(options);
  if (producer.ok()) {
    std::fprintf(stderr, "Create without endpoints succeeded\n");
    return 1;
  }
  std::printf("ok: %s\n", producer.status().ToString().c_str());
  return 0;
}
