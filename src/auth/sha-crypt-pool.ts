import { Worker } from 'node:worker_threads';

// The worker's body, as source: a separate .ts file would not load in workers under tsx.
const body = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.unixcrypt).then(({ encrypt }) => {
  parentPort.on('message', (m) => {
    try {
      parentPort.postMessage({ id: m.id, hash: encrypt(m.password, m.salt) });
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String(e && e.message) });
    }
  });
});
`;

type Pending = { resolve: (hash: string) => void; reject: (e: Error) => void };

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, Pending>();

function failAll(e: Error): void {
  for (const p of pending.values()) p.reject(e);
  pending.clear();
  worker = undefined;
}

function start(): Worker {
  const w = new Worker(body, { eval: true, workerData: { unixcrypt: import.meta.resolve('unixcrypt') } });
  w.unref();
  w.on('message', (m: { id: number; hash?: string; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.hash !== undefined) p?.resolve(m.hash);
    else p?.reject(new Error(`Cannot compute a SHA-crypt hash: ${m.error}`));
  });
  w.on('error', (e) => failAll(new Error(`SHA-crypt worker failed: ${e.message}`)));
  w.on('exit', () => failAll(new Error('SHA-crypt worker exited')));
  return w;
}

/**
 * `crypt(3)` SHA-256/SHA-512 in one worker thread: each check runs thousands of
 * hash rounds in JavaScript (tens of ms), which would otherwise stall every
 * request the server is serving. The worker does not keep the process alive.
 */
export function shaCryptOffThread(password: string, salt: string): Promise<string> {
  worker ??= start();
  const w = worker;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    w.postMessage({ id, password, salt });
  });
}
