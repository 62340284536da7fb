import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// The worker's body, as source: a separate .ts file would not load in workers under tsx.
const body = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = FULL');
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({});
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message) });
  }
});
`;

/** Checkpoints start at most this often while writes go on. */
const intervalMs = 1000;

/**
 * Copies committed WAL pages into the database file from a worker thread with
 * its own connection. A PASSIVE checkpoint blocks no writer, so the event loop
 * never waits for the copy and its fsync (on the loop, one could take hundreds
 * of milliseconds after a burst of writes). One checkpoint runs at a time.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private running = false;
  private last = 0;
  private failed = false;
  private readonly exited: Promise<void>;
  private waiters: (() => void)[] = [];

  /** `onFailure` runs once if the worker cannot checkpoint; the connection should then checkpoint itself. */
  constructor(path: string, onFailure: (e: Error) => void) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(body, { eval: true, workerData: { driver, path } });
    this.worker.unref();
    const fail = (e: Error) => {
      if (this.failed) return;
      this.failed = true;
      onFailure(e);
    };
    this.worker.on('message', (m: { error?: string }) => {
      this.running = false;
      this.last = Date.now();
      if (m.error !== undefined) fail(new Error(`WAL checkpoint failed: ${m.error}`));
      for (const w of this.waiters.splice(0)) w();
    });
    this.worker.on('error', fail);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Called after each commit: starts a checkpoint unless one runs or one ran just now. */
  committed(): void {
    if (this.failed || this.running || Date.now() - this.last < intervalMs) return;
    this.running = true;
    this.worker.postMessage('checkpoint');
  }

  /** Resolves once no checkpoint runs. */
  async idle(): Promise<void> {
    if (this.running) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Lets a running checkpoint finish, then closes the worker's connection. */
  async close(): Promise<void> {
    this.failed = true;
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
