// apogee-admin's command line: the flag parser and the typed flag readers
// (tools/admin/cli.h). Input: NUL-separated words; the first is
// $APOGEE_NAMESERVERS (an empty word: unset), the rest is argv. A command
// line that parses must name a command Usage() lists, and every typed
// reader must answer for every flag it carries (a value or an error naming
// the flag), as the commands call them.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fuzz/fuzz_util.h"
#include "tools/admin/cli.h"

namespace apogee::admin_cli {
namespace {

using fuzz::Fail;

void Run(absl::string_view text) {
  std::vector<std::string> words = absl::StrSplit(text, '\0');
  std::optional<std::string> env;
  if (!words.front().empty()) env = words.front();
  words.erase(words.begin());
  auto inv = Parse(words, env);
  fuzz::Answer(inv.status());
  if (!inv.ok()) return;
  if (inv->command.empty() || Usage().find(inv->command) == std::string::npos) {
    Fail(absl::StrCat("parsed an unknown command \"", inv->command, "\""));
  }
  if (inv->nameservers.empty()) Fail("parsed without a NameServer address");
  for (const auto& [name, value] : inv->flags) {
    fuzz::Answer(IntFlag(*inv, name, -1000, 1000).status());
    fuzz::Answer(TimeFlag(*inv, name).status());
    fuzz::Answer(QueueListFlag(*inv, name).status());
    fuzz::Answer(ChoiceFlag(*inv, name, {{"a", 1}, {"b", 2}}).status());
    if (FlagOr(*inv, name, "") != value) Fail("FlagOr does not return the flag's value");
  }
  Output out;
  out.lines.push_back(
      OneLine(text.size() > 200 ? std::string(text.substr(0, 200)) : std::string(text)));
  (void)out.Render(inv->json);
}

}  // namespace
}  // namespace apogee::admin_cli

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  apogee::admin_cli::Run(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
