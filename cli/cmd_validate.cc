// sluicectl validate: checks envelopes against the catalog without publishing them.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/envelope_io.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"

namespace sluice::cli {
namespace {

struct ValidateOptions {
  std::vector<std::string> files;
  bool fill = false;
};

// Exit 1 when any envelope (or file) is invalid; every one is reported either way.
int Validate(const Globals& g, const ValidateOptions& o) {
  auto catalog = g.Catalog();
  int bad = 0;
  for (const auto& f : o.files) {
    auto text = ReadInput(f);
    if (!text.ok()) return Fail(text.status());
    auto envelopes = ParseEnvelopes(*text);
    if (!envelopes.ok()) {
      std::printf("%s: %s\n", f.c_str(), std::string(envelopes.status().message()).c_str());
      ++bad;
      continue;
    }
    for (size_t i = 0; i < envelopes->size(); ++i) {
      v1::Envelope& e = (*envelopes)[i];
      if (o.fill) contracts::FillDefaults(e, catalog);
      absl::Status s = contracts::Validate(e, catalog);
      std::printf("%s#%zu %s: %s\n", f.c_str(), i + 1, e.type().empty() ? "?" : e.type().c_str(),
                  s.ok() ? "ok" : std::string(s.message()).c_str());
      if (!s.ok()) ++bad;
    }
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

void AddValidateCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<ValidateOptions>();
  auto* validate =
      app.add_subcommand("validate", "Validate envelopes (JSON, JSON lines or text format); '-' reads stdin");
  validate->add_option("files", o->files, "Files to check")->required();
  validate->add_flag("--fill-defaults", o->fill, "Assign id, occurred_at, type and version first, as producers do");
  OnRun(validate, g, [&g, o] { return Validate(g, *o); });
}

}  // namespace sluice::cli
