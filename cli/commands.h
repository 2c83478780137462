#pragma once
// One function per sluicectl subcommand: each adds its subcommand, flags and help to
// `app` and registers its body with OnRun (cli/globals.h). main calls them in the order
// the subcommands appear in --help.

#include <CLI/CLI.hpp>

#include "cli/globals.h"

namespace sluice::cli {

void AddTopicsCommand(CLI::App& app, Globals& g);    // topics ensure|list|delete (cmd_topics.cc)
void AddValidateCommand(CLI::App& app, Globals& g);  // validate (cmd_validate.cc)
void AddDemoCommand(CLI::App& app, Globals& g);      // demo (cmd_demo.cc)
void AddMigrateCommand(CLI::App& app, Globals& g);   // migrate (cmd_migrate.cc)
void AddPublishCommand(CLI::App& app, Globals& g);   // publish (cmd_publish.cc)
void AddTailCommand(CLI::App& app, Globals& g);      // tail (cmd_tail.cc)
void AddTokenCommand(CLI::App& app, Globals& g);     // token new (cmd_token.cc)
void AddStoryCommand(CLI::App& app, Globals& g);     // story (cmd_story.cc, body in story.cc)
void AddReplayCommand(CLI::App& app, Globals& g);    // replay (cmd_replay.cc, body in replay.cc)
// audit verify|retention (cmd_audit.cc, verify's body in verify.cc)
void AddAuditCommand(CLI::App& app, Globals& g);
// quality latest|history|worst|job (cmd_quality.cc)
void AddQualityCommand(CLI::App& app, Globals& g);
// triggers list|create|delete|pause|resume|history (cmd_triggers.cc)
void AddTriggersCommand(CLI::App& app, Globals& g);
void AddNotifyCommand(CLI::App& app, Globals& g);

}  // namespace sluice::cli
