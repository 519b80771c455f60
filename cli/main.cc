// vessel: run Linux containers, each in its own lightweight VM.
#include <unistd.h>

#include <iostream>
#include <map>

#include "base/log.h"
#include "commands.h"

namespace vessel::cli {

void print_error(const std::string& message) {
  log::error(message);
}

}  // namespace vessel::cli

int main(int argc, char** argv) {
  using namespace vessel::cli;
  CLI::App app{"vessel: Linux containers, each in its own lightweight VM", "vessel"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags also work after the verb
  GlobalOptions global;
  app.add_option("--root", global.root, "State root (default: $VESSEL_ROOT or /var/lib/vessel)");
  app.add_flag("--debug", global.debug, "Verbose output; the VM's boot log goes to stderr");
  app.set_version_flag("--version", "vessel 0.1.0");

  std::map<CLI::App*, Runner> runners;
  auto add = [&](Runner (*adder)(CLI::App&, const GlobalOptions&)) {
    size_t before = app.get_subcommands({}).size();
    Runner r = adder(app, global);
    auto subs = app.get_subcommands({});
    for (size_t i = before; i < subs.size(); ++i)
      runners[subs[i]] = r;  // verbs and aliases
  };
  add(add_run);
  add(add_image);
  add(add_system);
  add(add_registry);
  add(add_container);
  add(add_volume);
  add(add_network);
  add(add_copy);
  add(add_machine);

  // Name an unknown verb plainly, as Docker does, rather than CLI11's
  // "A subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--root") {
      ++i;
      continue;
    }
    if (a.starts_with("-")) continue;
    auto subs = app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == a; });
    if (subs.empty()) {
      vessel::log::error("'" + a + "' is not a vessel command (see 'vessel --help')");
      return kExitFailure;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (global.debug) vessel::log::set_level(vessel::log::Level::kDebug);
  for (auto& [sub, run] : runners)
    if (sub->parsed()) return run();
  return kExitUsage;
}
