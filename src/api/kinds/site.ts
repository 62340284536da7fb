import { Type, type Static } from '@sinclair/typebox';
import type { KindDef } from '../kind.ts';
import { createSchema, objectSchema, updateSchema } from '../object.ts';

export const SiteSpec = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    region: Type.Optional(Type.String({ maxLength: 63, pattern: '^[a-z0-9-]+$' })),
    /** Public URL of this site's server, for federation and forwarding. */
    url: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://' })),
  },
  { additionalProperties: false },
);
export const SiteStatus = Type.Object({}, { additionalProperties: true });
export const Site = objectSchema('site', SiteSpec, SiteStatus);
export type Site = Static<typeof Site>;
export const SiteCreate = createSchema('site', SiteSpec);
export type SiteCreate = Static<typeof SiteCreate>;

export const siteKind: KindDef = {
  kind: 'site',
  plural: 'sites',
  idPrefix: 'site',
  scope: 'cluster',
  spec: SiteSpec,
  status: SiteStatus,
  read: Site,
  create: SiteCreate,
  update: updateSchema('site', SiteSpec),
  references: () => [],
};
