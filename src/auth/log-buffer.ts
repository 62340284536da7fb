import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../base/logger.ts';

/** A real logger that writes into memory, so tests can search what was logged (e.g. for leaked secrets). */
export function bufferLogger(): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination: sink }), text: () => chunks.join('') };
}
