import { Type, type Static } from '@sinclair/typebox';
import type { KindDef } from '../kind.ts';
import { Condition, createSchema, objectSchema, updateSchema } from '../object.ts';
import { Arch } from './node.ts';

export const ImageFormat = Type.Union([
  Type.Literal('qcow2'),
  Type.Literal('raw'),
  Type.Literal('vmdk'),
  Type.Literal('vdi'),
  Type.Literal('vhdx'),
  Type.Literal('iso'),
]);
export type ImageFormat = Static<typeof ImageFormat>;

export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lower-case hex sha256' });

export const ImageSpec = Type.Object(
  {
    arch: Type.Optional(Arch),
    os: Type.Optional(Type.String({ maxLength: 128 })),
    minDiskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
    cloudInit: Type.Optional(Type.Boolean()),
    /** Hidden from new VMs; existing VMs keep using it. */
    deprecated: Type.Optional(Type.Boolean()),
    /** Expected content hash; an upload or import that differs is refused. */
    sha256: Type.Optional(Sha256),
  },
  { additionalProperties: false },
);
export type ImageSpec = Static<typeof ImageSpec>;

export const ImageStatus = Type.Object(
  {
    phase: Type.Optional(
      Type.Union([Type.Literal('pending'), Type.Literal('uploading'), Type.Literal('ready'), Type.Literal('failed')]),
    ),
    format: Type.Optional(ImageFormat),
    sha256: Type.Optional(Sha256),
    sizeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    virtualSizeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Hash of the bytes as uploaded or imported (what `spec.sha256` is compared with). */
    sourceSha256: Type.Optional(Sha256),
    /** The format found inside the upload, before conversion to the stored format. */
    sourceFormat: Type.Optional(ImageFormat),
    compression: Type.Optional(Type.Union([Type.Literal('gzip'), Type.Literal('xz')])),
    conditions: Type.Optional(Type.Array(Condition, { maxItems: 32 })),
  },
  { additionalProperties: false },
);
export type ImageStatus = Static<typeof ImageStatus>;

export const Image = objectSchema('image', ImageSpec, ImageStatus);
export type Image = Static<typeof Image>;
export const ImageCreate = createSchema('image', ImageSpec);
export type ImageCreate = Static<typeof ImageCreate>;

export const imageKind: KindDef = {
  kind: 'image',
  plural: 'images',
  idPrefix: 'img',
  scope: 'project',
  spec: ImageSpec,
  status: ImageStatus,
  read: Image,
  create: ImageCreate,
  update: updateSchema('image', ImageSpec),
  references: () => [],
};
