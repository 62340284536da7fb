import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { runAgent } from './agent/main.ts';
import type { LocalAgentContext } from './server/main.ts';

/** The agent `crowd up` runs beside its server: enrols itself on first start with a token the server mints. */
export async function localAgent(ctx: LocalAgentContext): Promise<void> {
  const enrolled = existsSync(join(ctx.dataDir, 'identity.json'));
  const name = hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'local';
  await runAgent(
    {
      dataDir: ctx.dataDir,
      driver: 'qemu',
      name,
      ...(enrolled ? {} : { server: ctx.url, joinToken: await ctx.joinToken() }),
    },
    ctx.signal,
    ctx.logger.child({ component: 'agent' }),
  );
}
