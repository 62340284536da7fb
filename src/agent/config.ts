import os from 'node:os';
import { join } from 'node:path';

/** The agent's settings from the environment (read only here). */
export interface AgentEnv {
  /** `CROWD_AGENT_DIR`, default `~/.local/share/crowd/agent` (or /var/lib/crowd/agent as root). */
  dataDir: string;
}

export function agentEnv(env: NodeJS.ProcessEnv = process.env): AgentEnv {
  const fallback = process.getuid?.() === 0 ? '/var/lib/crowd/agent' : join(env.XDG_DATA_HOME ?? join(os.homedir(), '.local/share'), 'crowd', 'agent');
  return { dataDir: env.CROWD_AGENT_DIR ?? fallback };
}
