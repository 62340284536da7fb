import { systemClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { Client } from '../client/client.ts';
import { Agent, type AgentOptions } from './agent.ts';
import { localImages } from './local-images.ts';

/**
 * An Agent as tests run one against an in-process server: real clock, silent
 * log, base images from a local folder, a 50 ms tick; `extra` overrides any of it.
 */
export function testAgent(o: { node: string; url: string; authorization: string; imageDir: string } & Pick<AgentOptions, 'driver' | 'cache'>, extra: Partial<AgentOptions> = {}): Agent {
  return new Agent({
    node: o.node,
    client: () => new Client({ baseUrl: o.url, authorization: o.authorization }),
    driver: o.driver,
    cache: o.cache,
    clock: systemClock,
    logger: silentLogger(),
    host: { accel: 'tcg', imagePath: localImages(o.imageDir) },
    tickMs: 50,
    ...extra,
  });
}
