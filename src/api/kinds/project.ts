import { Type, type Static } from '@sinclair/typebox';
import type { KindDef } from '../kind.ts';
import { createSchema, objectSchema, updateSchema } from '../object.ts';

export const ProjectSpec = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Role bindings: a user name, or `group:<name>` for a group, → its role in this project. */
    members: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]), {
        maxProperties: 1000,
        description: 'user or "group:<name>" → admin, operator or viewer',
      }),
    ),
  },
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
