import type { Command } from 'commander';
import { at, defined, type Flags, type Noun } from '../noun.ts';

/** Sites: one server each, with region and public URL. */
export const siteNoun: Noun = {
  kind: 'site',
  summary: 'sites (one server each)',
  columns: [
    { header: 'REGION', value: (o) => at(o, 'spec', 'region') },
    { header: 'URL', value: (o) => at(o, 'spec', 'url') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--description <text>', 'what the site is')
      .option('--region <name>', 'region, e.g. eu-west')
      .option('--url <url>', 'public URL of the site\'s server');
  },
  spec: (flags: Flags) => defined({ description: flags.description, region: flags.region, url: flags.url }),
};
