// The `distx` command line.
import { Command } from "commander";
import { registerAlertCommands } from "./commands/alerts.js";
import { registerClientCommands, schedulerOption } from "./commands/client.js";
import { registerSecurityCommands } from "./commands/security.js";
import { registerClusterCommands } from "./commands/cluster.js";
import { registerDaemonCommands } from "./commands/daemons.js";
import { registerTokenCommands } from "./commands/tokens.js";
import { registerKernelDevCommands } from "./commands/kernel-dev.js";
import { fail } from "./util.js";

const program = new Command()
  .name("distx")
  .description("DistributeX: run WebAssembly kernels across machines, placed by hardware fit")
  .version("0.1.0")
  .showHelpAfterError()
  // A command's options are read before its subcommands only (`distx agent install --scheduler`
  // is install's option, not agent's); the root has none of its own but --help/--version.
  .enablePositionalOptions()
  .configureOutput({ outputError: (str, write) => write(`distx: ${str.replace(/^error: /, "")}`) })
  .exitOverride((err) => {
    // commander's own usage errors (unknown option, missing argument) exit 2; help/version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerDaemonCommands(program);
registerClusterCommands(program);
registerClientCommands(program);
registerAlertCommands(program);
registerSecurityCommands(program, schedulerOption);
registerTokenCommands(program);
registerKernelDevCommands(program);

// Errors thrown before an action runs (a preAction hook checking flags) get the same treatment as its own.
await program.parseAsync(process.argv).catch(fail);
