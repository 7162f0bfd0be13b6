// Errors that no restart cures, and the exit status that says so. A role that refuses an option or its run
// configuration, or whose machine cannot give it the device it was told to use, exits with CONFIG_EXIT_CODE; the
// local run's supervisor (lib/local/supervisor.ts) then stops the run with the role's message instead of restarting
// it for ever. A crash, a lost connection or a kill -9 exits otherwise and is restarted. On Kubernetes the pod
// simply crash-loops with the message in its log (docs/roles.md, "Exit status").

/** sysexits.h EX_CONFIG: "configuration error"; do not restart the process as it is. */
export const CONFIG_EXIT_CODE = 78;

/**
 * A refused option or run configuration (ConfigError, lib/config/load.ts, is one), or a device the machine cannot
 * give: the same start would fail the same way. Free of imports, so the CLI's entry point can name it cheaply.
 */
export class SetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SetupError';
  }
}

/** The exit status a role's entry point ends with on `e`: CONFIG_EXIT_CODE for a SetupError, else 1. */
export function exitCodeFor(e: unknown): number {
  return e instanceof SetupError ? CONFIG_EXIT_CODE : 1;
}
