// gRPC server reflection (grpcurl, Postman, grpcui list and call methods
// without the .proto files), for the processes operators poke at: the
// broker and the NameServer.
//
// Its own library because linking gRPC's reflection library registers the
// plugin in every server of the process, and the plugin serves on gRPC's
// sync API, whose threads take turns polling with the completion-queue
// pollers (docs/benchmarks.md, "Completion queues end to end"). The store,
// reached only by its broker, does not link it.
#pragma once

namespace apogee {

// Adds reflection to every GrpcServer started after the call. Idempotent.
void EnableServerReflection();

}  // namespace apogee
