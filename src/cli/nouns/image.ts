import type { Command } from 'commander';
import type { AnyObject } from '../../api/object.ts';
import { label, outputOption } from '../command-options.ts';
import type { CliContext } from '../context.ts';
import { choiceFlag, intFlag } from '../flags.ts';
import { downloadImage } from '../image-download.ts';
import { importImage } from '../image-import.ts';
import { uploadImage } from '../image-upload.ts';
import { at, defined, type Flags, type Noun } from '../noun.ts';
import { renderValue, type OutputFormat } from '../output.ts';

function printImage(ctx: CliContext, image: AnyObject, format: OutputFormat): void {
  if (format !== 'table') return ctx.print(renderValue(image, format));
  const s = image.status as { phase?: string; format?: string; sha256?: string; virtualSizeBytes?: number };
  ctx.print(`${label('image', image.name)} ${s.phase}: ${s.format}, virtual size ${s.virtualSizeBytes} bytes, sha256 ${s.sha256}`);
}

/** `crowd image upload|import|download`: moving image bytes, through the image routes. */
function addImageCommands(cmd: Command, ctx: CliContext): void {
  const upload = cmd
    .command('upload')
    .description('upload a disk image or ISO (streamed, resumable: run it again to continue an interrupted upload)')
    .argument('<file>', 'raw, qcow2, vmdk, vdi, vhdx or iso, optionally .gz/.xz; the format is read from the content')
    .requiredOption('--name <name>', 'the image (created if it does not exist)')
    .option('--sha256 <hex>', 'expected sha256 of the file; a mismatch is refused')
    .option('--project <name>', 'project (default "default")')
    .option('--retries <n>', 'times to continue after a broken connection (default 3)', intFlag, 3);
  outputOption(upload).action(async (file: string, flags: Flags) => {
    const image = await uploadImage(ctx, { file, name: flags.name as string, retries: flags.retries as number, ...pick(flags) });
    printImage(ctx, image, flags.output as OutputFormat);
  });
  const imp = cmd
    .command('import')
    .description('make the server fetch an image from an http(s) URL, with the same checks as an upload')
    .argument('<url>', 'http:// or https:// URL')
    .requiredOption('--name <name>', 'the image (created if it does not exist)')
    .option('--sha256 <hex>', 'expected sha256 of the fetched bytes')
    .option('--project <name>', 'project (default "default")')
    .option('--no-wait', 'return once the server accepted the import');
  outputOption(imp).action(async (url: string, flags: Flags) => {
    const image = await importImage(ctx, { url, name: flags.name as string, wait: flags.wait as boolean, ...pick(flags) });
    printImage(ctx, image, flags.output as OutputFormat);
  });
  cmd
    .command('download')
    .description("save an image's stored blob (qcow2, or the ISO); continues an earlier partial download")
    .argument('<name>', 'image name')
    .requiredOption('-o, --output <file>', 'where to write it')
    .option('--project <name>', 'project (default "default")')
    .action(async (name: string, flags: Flags) => {
      const out = await downloadImage(ctx, { name, output: flags.output as string, ...(flags.project ? { project: flags.project as string } : {}) });
      ctx.print(`${label('image', name)} saved to ${String(flags.output)} (${out.bytes} bytes, sha256 ${out.sha256})`);
    });
}

function pick(flags: Flags): { project?: string; sha256?: string } {
  return defined({ project: flags.project as string | undefined, sha256: flags.sha256 as string | undefined });
}

/** Images: the disks VMs boot from, with their architecture, OS and expected hash. */
export const imageNoun: Noun = {
  kind: 'image',
  summary: 'disk images VMs boot from',
  columns: [
    { header: 'OS', value: (o) => at(o, 'spec', 'os') },
    { header: 'ARCH', value: (o) => at(o, 'spec', 'arch') },
    { header: 'PHASE', value: (o) => at(o, 'status', 'phase') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--arch <arch>', 'x86_64 or aarch64', choiceFlag(['x86_64', 'aarch64'] as const))
      .option('--os <name>', 'operating system, e.g. debian-12')
      .option('--min-disk <GiB>', 'smallest root disk it fits on', intFlag)
      .option('--cloud-init', 'the image runs cloud-init')
      .option('--sha256 <hex>', 'expected content hash')
      .option('--deprecated', 'hide from new VMs');
  },
  spec(flags: Flags) {
    return defined({
      arch: flags.arch,
      os: flags.os,
      minDiskGiB: flags.minDisk,
      cloudInit: flags.cloudInit,
      sha256: flags.sha256,
      deprecated: flags.deprecated,
    });
  },
  addCommands: addImageCommands,
};
