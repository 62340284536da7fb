import { homedir } from 'node:os';
import { join } from 'node:path';

/** The environment as the server sees it; read only here. */
export type Env = Record<string, string | undefined>;

/** Paths the server takes from the environment. */
export interface ServerPaths {
  /** `$XDG_DATA_HOME/crowd`, else `~/.local/share/crowd`. */
  dataDir: string;
  /** Where `crowd up` writes the CLI's config: `$CROWD_CONFIG`, else `~/.config/crowd/config.yaml` (the CLI reads the same). */
  cliConfig: string;
}

export function serverPaths(env: Env): ServerPaths {
  const home = env.HOME || homedir();
  return {
    dataDir: join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'crowd'),
    cliConfig: env.CROWD_CONFIG || join(home, '.config', 'crowd', 'config.yaml'),
  };
}

/** This process's environment, for the binary's entry points. */
export function processEnv(): Env {
  return process.env;
}
