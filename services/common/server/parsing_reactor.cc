#include "services/common/server/parsing_reactor.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "google/protobuf/descriptor.h"

namespace apogee {

int MethodIndex(absl::string_view full_method_name) {
  const google::protobuf::MethodDescriptor* method =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          std::string(full_method_name));
  if (method == nullptr) {
    std::fprintf(stderr, "MethodIndex: no method %s in the generated pool\n",
                 std::string(full_method_name).c_str());
    std::abort();
  }
  return method->index();
}

}  // namespace apogee
