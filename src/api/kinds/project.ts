import { Type, type Static } from '@sinclair/typebox';
import type { KindDef } from '../kind.ts';
import { createSchema, objectSchema, updateSchema } from '../object.ts';

export const ProjectSpec = Type.Object(
  { description: Type.Optional(Type.String({ maxLength: 1024 })) },
  { additionalProperties: false },
);
export const ProjectStatus = Type.Object({}, { additionalProperties: true });
export const Project = objectSchema('project', ProjectSpec, ProjectStatus);
export type Project = Static<typeof Project>;
export const ProjectCreate = createSchema('project', ProjectSpec);
export type ProjectCreate = Static<typeof ProjectCreate>;

export const projectKind: KindDef = {
  kind: 'project',
  plural: 'projects',
  idPrefix: 'prj',
  scope: 'cluster',
  spec: ProjectSpec,
  status: ProjectStatus,
  read: Project,
  create: ProjectCreate,
  update: updateSchema('project', ProjectSpec),
  references: () => [],
};
