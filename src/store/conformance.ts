import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, type ErrorCode } from '../api/errors.ts';
import { parseFieldFilter } from '../api/field-filter.ts';
import { parseSelector } from '../api/selector.ts';
import type { AnyObject } from '../api/object.ts';
import type { WatchEvent } from '../api/wire.ts';
import type { Store } from './store.ts';

/** A backend under test; `reopen` (when the backend persists) closes and opens the same data again. */
export interface StoreHarness {
  store: Store;
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

const by = { author: 'tester' };

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, path?: string): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (path) assert.ok(e.details?.some((d) => d.path === path), `expected a detail at ${path}, got ${JSON.stringify(e.details)}`);
    return e;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

/** Creates the objects a VM needs: project "default", machine type, image, network. */
export async function seedBasics(store: Store): Promise<void> {
  await store.create({ kind: 'project', name: 'default', spec: {} }, by);
  await store.create(
    { kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 512, diskGiB: 10, ranges: { cpus: { min: 1, max: 4 } } } },
    by,
  );
  await store.create({ kind: 'image', name: 'debian', spec: { arch: 'x86_64' } }, by);
  await store.create({ kind: 'network', name: 'lan', spec: { ipv4: { subnet: '10.0.0.0/24' } } }, by);
}

function vm(name: string, extra: Partial<{ labels: Record<string, string>; metadata: Record<string, unknown>; spec: Record<string, unknown> }> = {}) {
  return {
    kind: 'vm',
    name,
    labels: extra.labels ?? {},
    metadata: extra.metadata ?? {},
    spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }], ...extra.spec },
  };
}

async function collect(it: AsyncIterable<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  for await (const ev of it) {
    out.push(ev);
    if (out.length === n) break;
  }
  return out;
}

/** The one suite every Store backend must pass. */
export function storeConformance(name: string, open: () => Promise<StoreHarness>): void {
  describe(`Store conformance: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;
    before(async () => {
      h = await open();
      store = h.store;
      await seedBasics(store);
    });
    after(async () => h.cleanup());

    test('create assigns an id, the next revision and timestamps, and get finds it by id and by name', async () => {
      const rev = await store.revision();
      const v = await store.create(vm('web-1'), { author: 'alice', reason: 'first' });
      assert.match(v.id, /^vm_[0-9A-Z]{26}$/);
      assert.equal(v.revision, rev + 1);
      assert.equal(v.project, 'default');
      assert.equal(v.updatedBy, 'alice');
      assert.deepEqual(await store.get({ kind: 'vm', idOrName: v.id }), v);
      assert.deepEqual(await store.get({ kind: 'vm', project: 'default', idOrName: 'web-1' }), v);
      assert.equal(await store.revision(), v.revision);
    });

    test('one revision counter orders writes of every kind', async () => {
      const a = await store.create({ kind: 'site', name: 'rev-a', spec: {} }, by);
      const b = await store.create(vm('rev-b'), by);
      const c = await store.updateStatus({ kind: 'site', idOrName: 'rev-a' }, { note: 'x' }, by);
      assert.equal(b.revision, a.revision + 1);
      assert.equal(c.revision, b.revision + 1);
    });

    test('names are unique per kind and project; cluster kinds have no project', async () => {
      await rejectsWith(store.create(vm('web-1'), by), 'already_exists', '/name');
      await store.create({ kind: 'project', name: 'other', spec: {} }, by);
      await store.create({ kind: 'image', project: 'other', name: 'debian', spec: {} }, by);
      await store.create({ kind: 'network', project: 'other', name: 'lan', spec: { ipv4: { subnet: '10.0.0.0/24' } } }, by);
      const other = await store.create({ ...vm('web-1'), project: 'other' }, by);
      assert.equal(other.project, 'other');
      const site = await store.get({ kind: 'site', project: 'other', idOrName: 'rev-a' });
      assert.equal(site.project, undefined);
    });

    test('invalid documents are refused with the path of the problem and change nothing', async () => {
      const rev = await store.revision();
      await rejectsWith(store.create({ ...vm('bad'), name: 'Not_A_Label' }, by), 'invalid', '/name');
      await rejectsWith(store.create(vm('bad', { spec: { power: 'sideways' } }), by), 'invalid', '/spec/power');
      await rejectsWith(store.create(vm('bad', { spec: { extra: 1 } }), by), 'invalid');
      await rejectsWith(store.create(vm('bad', { labels: { 'bad key!': 'x' } }), by), 'invalid');
      await rejectsWith(store.create(vm('bad', { spec: { nics: [{ network: 'lan', mac: '01:00:5e:00:00:01' }] } }), by), 'invalid', '/spec/nics/0/mac');
      await rejectsWith(store.create(vm('bad', { metadata: { blob: 'x'.repeat(70_000) } }), by), 'too_large', '/metadata');
      await rejectsWith(store.create({ kind: 'network', name: 'bad', spec: { ipv4: { subnet: '10.0.0.1/24' } } }, by), 'invalid', '/spec/ipv4/subnet');
      await rejectsWith(store.create({ kind: 'nonsense', name: 'x', spec: {} }, by), 'invalid');
      await rejectsWith(store.create({ ...vm('bad'), project: 'missing' }, by), 'invalid', '/project');
      assert.equal(await store.revision(), rev);
    });

    test('references must exist and block deleting what they name', async () => {
      await rejectsWith(store.create(vm('orphan', { spec: { image: 'nope' } }), by), 'invalid', '/spec/image');
      await rejectsWith(store.create(vm('orphan', { spec: { nics: [{ network: 'nope' }] } }), by), 'invalid', '/spec/nics/0/network');
      await store.create({ kind: 'network', name: 'busy', spec: { ipv4: { subnet: '10.9.0.0/24' } } }, by);
      await store.create(vm('user', { spec: { nics: [{ network: 'busy' }] } }), by);
      const e = await rejectsWith(store.delete({ kind: 'network', idOrName: 'busy' }, by), 'conflict');
      assert.match(e.message, /vm "user"/);
      await rejectsWith(store.delete({ kind: 'project', idOrName: 'other' }, by), 'conflict');
      await store.delete({ kind: 'vm', idOrName: 'user' }, by);
      await store.delete({ kind: 'network', idOrName: 'busy' }, by);
      await rejectsWith(store.get({ kind: 'network', idOrName: 'busy' }), 'not_found');
    });

    test("a machine type's allowed ranges bound a VM's overrides", async () => {
      await store.create(vm('mt-ok', { spec: { resources: { cpus: 4 } } }), by);
      await rejectsWith(store.create(vm('mt-big', { spec: { resources: { cpus: 8 } } }), by), 'invalid', '/spec/resources/cpus');
      await rejectsWith(store.create(vm('mt-mem', { spec: { resources: { memoryMiB: 1024 } } }), by), 'invalid', '/spec/resources/memoryMiB');
    });

    test('overlapping subnets in one project are refused', async () => {
      await rejectsWith(store.create({ kind: 'network', name: 'overlap', spec: { ipv4: { subnet: '10.0.0.128/25' } } }, by), 'invalid', '/spec/ipv4/subnet');
    });

    test('a stale If-Match fails and concurrent writers get exactly one winner per revision', async () => {
      const v = await store.create(vm('race'), by);
      await rejectsWith(store.update({ kind: 'vm', idOrName: 'race' }, { labels: { a: 'b' }, metadata: {}, spec: v.spec }, { ...by, ifRevision: v.revision - 1 }), 'precondition_failed');
      const attempts = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          store.update({ kind: 'vm', idOrName: 'race' }, { labels: { writer: String(i) }, metadata: {}, spec: v.spec }, { ...by, ifRevision: v.revision }),
        ),
      );
      const won = attempts.filter((a) => a.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const a of attempts)
        if (a.status === 'rejected') assert.equal((a.reason as ApiError).code, 'precondition_failed');
    });

    test('an update that changes nothing spends no revision', async () => {
      const v = await store.get({ kind: 'vm', idOrName: 'web-1' });
      const same = await store.update({ kind: 'vm', idOrName: 'web-1' }, { labels: v.labels, metadata: v.metadata, spec: v.spec }, by);
      assert.equal(same.revision, v.revision);
    });

    test('status writes keep the spec and are validated against the status schema', async () => {
      const v = await store.get({ kind: 'vm', idOrName: 'web-1' });
      const s = await store.updateStatus({ kind: 'vm', idOrName: 'web-1' }, { phase: 'running' }, { author: 'agent' });
      assert.deepEqual(s.spec, v.spec);
      assert.equal(s.status.phase, 'running');
      await rejectsWith(store.updateStatus({ kind: 'vm', idOrName: 'web-1' }, { phase: 'dancing' }, by), 'invalid', '/status/phase');
    });

    test('a batch of status writes fails only its refused items and spends one revision per change, in order', async () => {
      const [a, b, c] = await Promise.all(['batch-a', 'batch-b', 'batch-c'].map((n) => store.create(vm(n), by)));
      const rev = await store.revision();
      const results = await store.updateStatuses(
        [
          { ref: { kind: 'vm', idOrName: a!.id }, status: { phase: 'scheduled', node: 'n1' }, ifRevision: a!.revision },
          { ref: { kind: 'vm', idOrName: 'batch-b' }, status: { phase: 'scheduled' }, ifRevision: b!.revision - 1 },
          { ref: { kind: 'vm', idOrName: 'batch-c' }, status: { phase: 'dancing' } },
          { ref: { kind: 'vm', idOrName: 'batch-missing' }, status: { phase: 'provisioning' } },
          { ref: { kind: 'vm', idOrName: 'batch-c' }, status: c!.status },
          { ref: { kind: 'vm', idOrName: 'batch-c' }, status: { phase: 'provisioning' } },
        ],
        { author: 'batcher', reason: 'placed' },
      );
      assert.deepEqual(results.map((r) => (r.ok ? r.object.revision - rev : r.error.code)), [1, 'precondition_failed', 'invalid', 'not_found', c!.revision - rev, 2]);
      const refused = results[2]!;
      assert.ok(!refused.ok && refused.error.details?.some((d) => d.path === '/status/phase'));
      assert.equal(await store.revision(), rev + 2);
      assert.equal((await store.get({ kind: 'vm', idOrName: 'batch-b' })).revision, b!.revision, 'a refused item changes nothing');
      const h = await store.history({ kind: 'vm', idOrName: 'batch-a' }, { limit: 1 });
      assert.deepEqual([h.items[0]!.author, h.items[0]!.reason, h.items[0]!.object.status], ['batcher', 'placed', { phase: 'scheduled', node: 'n1' }]);
      assert.deepEqual(await store.updateStatuses([], by), []);
      const placed = await store.list({ kind: 'vm', where: [parseFieldFilter('status.node=n1')] });
      assert.deepEqual(placed.items.map((o) => o.name), ['batch-a'], 'the field index follows a batched status write');
    });

    test('a batch of status writes gives the same versions, history and watch events as single writes', async () => {
      const single = await Promise.all([0, 1, 2].map((i) => store.create(vm(`one-${i}`, { labels: { pair: 'one' } }), by)));
      const batched = await Promise.all([0, 1, 2].map((i) => store.create(vm(`many-${i}`, { labels: { pair: 'many' } }), by)));
      const statuses = [{ phase: 'scheduled', node: 'n1' }, { phase: 'scheduled', node: 'n2' }, { phase: 'provisioning' }];
      const meta = { author: 'placer', reason: 'compare' };
      const ac = new AbortController();
      const watch = (pair: string, from: number) => collect(store.watch({ kinds: ['vm'], selector: parseSelector(`pair=${pair}`), fromRevision: from }, ac.signal), 2);
      const fromOne = await store.revision();
      const oneEvents = watch('one', fromOne);
      const ones: unknown[] = [];
      for (const [i, o] of single.entries()) {
        const ifRevision = i === 1 ? o.revision - 1 : o.revision;
        ones.push(await store.updateStatus({ kind: 'vm', idOrName: o.id }, statuses[i]!, { ...meta, ifRevision }).catch((e: ApiError) => e.code));
      }
      const fromMany = await store.revision();
      const manyEvents = watch('many', fromMany);
      const many = await store.updateStatuses(
        batched.map((o, i) => ({ ref: { kind: 'vm', idOrName: o.id }, status: statuses[i]!, ifRevision: i === 1 ? o.revision - 1 : o.revision })),
        meta,
      );
      const [gotOne, gotMany] = await Promise.all([oneEvents, manyEvents]);
      ac.abort();
      const shape = (o: AnyObject, from: number) => ({ revision: o.revision - from, status: o.status, updatedBy: o.updatedBy });
      assert.deepEqual(
        many.map((r) => (r.ok ? shape(r.object, fromMany) : r.error.code)),
        ones.map((r) => (typeof r === 'string' ? r : shape(r as AnyObject, fromOne))),
      );
      const events = (got: WatchEvent[], from: number) => got.map((e) => (e.type === 'bookmark' ? e.type : [e.type, shape(e.object, from)]));
      assert.deepEqual(events(gotMany, fromMany), events(gotOne, fromOne));
      for (const i of [0, 1, 2]) {
        const [ho, hm] = await Promise.all([store.history({ kind: 'vm', idOrName: single[i]!.id }), store.history({ kind: 'vm', idOrName: batched[i]!.id })]);
        const entries = (h: typeof ho, from: number) => h.items.map((e) => [e.op, e.author, e.reason, e.revision > from ? shape(e.object, from) : 'before']);
        assert.deepEqual(entries(hm, fromMany), entries(ho, fromOne));
      }
    });

    test('history keeps every version with author and reason; get reads any revision, also after delete', async () => {
      const v1 = await store.create(vm('hist', { labels: { v: '1' } }), { author: 'alice', reason: 'create it' });
      const v2 = await store.update({ kind: 'vm', idOrName: 'hist' }, { labels: { v: '2' }, metadata: {}, spec: v1.spec }, { author: 'bob', reason: 'relabel' });
      const h = await store.history({ kind: 'vm', idOrName: 'hist' });
      assert.deepEqual(h.items.map((e) => [e.revision, e.author, e.reason, e.op]), [
        [v2.revision, 'bob', 'relabel', 'put'],
        [v1.revision, 'alice', 'create it', 'put'],
      ]);
      assert.deepEqual((await store.get({ kind: 'vm', idOrName: 'hist' }, { atRevision: v1.revision })).labels, { v: '1' });
      assert.deepEqual((await store.get({ kind: 'vm', idOrName: v1.id }, { atRevision: v2.revision + 0 })).labels, { v: '2' });
      const page = await store.history({ kind: 'vm', idOrName: 'hist' }, { limit: 1 });
      assert.equal(page.items.length, 1);
      const rest = await store.history({ kind: 'vm', idOrName: 'hist' }, { limit: 1, continue: page.continue! });
      assert.equal(rest.items[0]!.revision, v1.revision);
      await rejectsWith(store.get({ kind: 'vm', idOrName: 'hist' }, { atRevision: v1.revision - 1 }), 'not_found');
      await rejectsWith(store.get({ kind: 'vm', idOrName: 'hist' }, { atRevision: (await store.revision()) + 5 }), 'invalid');
      const d = await store.delete({ kind: 'vm', idOrName: 'hist' }, { author: 'carol' });
      await rejectsWith(store.get({ kind: 'vm', idOrName: 'hist' }), 'not_found');
      assert.deepEqual((await store.get({ kind: 'vm', idOrName: 'hist' }, { atRevision: d.revision - 1 })).labels, { v: '2' });
      const after = await store.history({ kind: 'vm', idOrName: v1.id });
      assert.equal(after.items[0]!.op, 'delete');
      await rejectsWith(store.history({ kind: 'vm', project: 'other', idOrName: v1.id }), 'not_found');
      await rejectsWith(store.get({ kind: 'vm', project: 'other', idOrName: v1.id }, { atRevision: v2.revision }), 'not_found');
    });

    describe('lists', () => {
      before(async () => {
        const tiers = ['web', 'api', 'db'];
        for (let i = 0; i < 30; i++) {
          const labels: Record<string, string> = { app: 'shop', tier: tiers[i % 3]! };
          if (i % 5 === 0) labels.canary = 'yes';
          await store.create(vm(`shop-${String(i).padStart(2, '0')}`, { labels, metadata: { owner: { team: i < 10 ? 'red' : 'blue' }, n: i } }), by);
        }
      });
      const names = async (q: { selector?: string; where?: string[]; project?: string }) =>
        (
          await store.list({
            kind: 'vm',
            ...(q.selector !== undefined ? { selector: parseSelector(q.selector) } : {}),
            ...(q.where ? { where: q.where.map(parseFieldFilter) } : {}),
            ...(q.project ? { project: q.project } : {}),
            limit: 1000,
          })
        ).items.map((o) => o.name);

      test('label selectors support =, !=, in, notin, has and !has', async () => {
        assert.equal((await names({ selector: 'app=shop' })).length, 30);
        assert.equal((await names({ selector: 'app=shop,tier=web' })).length, 10);
        assert.equal((await names({ selector: 'app=shop,tier!=web' })).length, 20);
        assert.equal((await names({ selector: 'tier in (web,api)' })).length, 20);
        assert.equal((await names({ selector: 'app=shop,tier notin (web,api)' })).length, 10);
        assert.equal((await names({ selector: 'canary' })).length, 6);
        assert.equal((await names({ selector: 'app=shop,!canary' })).length, 24);
        assert.equal((await names({ selector: 'has(canary),tier=web' })).length, 2);
        assert.ok((await names({ selector: 'tier!=web' })).includes('web-1'), '!= also matches objects without the label');
      });

      test('field filters match scalar leaves of metadata and spec', async () => {
        assert.equal((await names({ where: ['metadata.owner.team=red'] })).length, 10);
        assert.deepEqual(await names({ where: ['metadata.n=7'] }), ['shop-07']);
        assert.deepEqual(await names({ where: ['metadata.n=7', 'metadata.owner.team=blue'] }), []);
        assert.ok((await names({ where: ['spec.image=debian'] })).length >= 30);
        assert.deepEqual(await names({ where: ['spec.image=nope'] }), []);
        assert.deepEqual(await names({ where: ['status.phase=running'] }), ['web-1']);
      });

      test('selectors and field filters follow updates, status writes and deletes', async () => {
        const v = await store.create(vm('moving', { labels: { app: 'mover', gone: 'soon' }, metadata: { team: 'red' } }), by);
        await store.update({ kind: 'vm', idOrName: 'moving' }, { labels: { app: 'mover', fresh: 'yes' }, metadata: { team: 'blue' }, spec: v.spec }, by);
        assert.deepEqual(await names({ selector: 'app=mover,gone' }), []);
        assert.deepEqual(await names({ selector: 'app=mover,fresh=yes' }), ['moving']);
        assert.deepEqual(await names({ where: ['metadata.team=red'] }), []);
        assert.deepEqual(await names({ where: ['metadata.team=blue'] }), ['moving']);
        await store.updateStatus({ kind: 'vm', idOrName: 'moving' }, { phase: 'running', node: 'host-a' }, by);
        await store.updateStatus({ kind: 'vm', idOrName: 'moving' }, { phase: 'running', node: 'host-b' }, by);
        assert.deepEqual(await names({ where: ['status.node=host-a'] }), []);
        assert.deepEqual(await names({ where: ['status.node=host-b', 'metadata.team=blue'] }), ['moving']);
        assert.deepEqual(await names({ selector: 'fresh=yes' }), ['moving'], 'a status write keeps the labels indexed');
        await store.delete({ kind: 'vm', idOrName: 'moving' }, by);
        assert.deepEqual(await names({ where: ['status.node=host-b'] }), []);
        assert.deepEqual(await names({ selector: 'app=mover' }), []);
      });

      test('pages walk the whole list once, in name order', async () => {
        const seen: string[] = [];
        let cont: string | undefined;
        do {
          const page = await store.list({ kind: 'vm', selector: parseSelector('app=shop'), limit: 7, ...(cont ? { continue: cont } : {}) });
          seen.push(...page.items.map((o) => o.name));
          cont = page.continue;
        } while (cont);
        assert.equal(seen.length, 30);
        assert.deepEqual(seen, [...seen].sort());
        await rejectsWith(store.list({ kind: 'vm', continue: 'garbage' }), 'invalid');
        await rejectsWith(store.list({ kind: 'vm', limit: 0 }), 'invalid');
      });

      test('stored lists are the same pages as the stored JSON text, with name and project beside it', async () => {
        for (const q of [{ kind: 'vm', project: '*', limit: 7 }, { kind: 'vm', selector: parseSelector('app=shop'), limit: 1000 }, { kind: 'site', limit: 2 }]) {
          const [parsed, stored] = await Promise.all([store.list(q), store.listStored(q)]);
          assert.deepEqual(stored.items.map((o) => JSON.parse(o.json) as AnyObject), parsed.items);
          assert.deepEqual(stored.items.map((o) => [o.project, o.name]), parsed.items.map((o) => [o.project, o.name]));
          assert.equal(stored.continue, parsed.continue);
          assert.equal(stored.revision, parsed.revision);
        }
      });

      test('lists are per project unless asked for every project', async () => {
        assert.ok(!(await names({})).some((n) => n === 'x'));
        const all = await store.list({ kind: 'vm', project: '*', selector: parseSelector('!app'), limit: 1000 });
        assert.ok(all.items.some((o) => o.project === 'other'));
        assert.deepEqual(await names({ project: 'other' }), ['web-1']);
      });
    });

    describe('watch', () => {
      test('replays from a revision, then streams live changes that match the filters', async () => {
        const from = await store.revision();
        const a = await store.create(vm('watch-a', { labels: { w: 'yes' } }), by);
        await store.create(vm('watch-b', { labels: { w: 'no' } }), by);
        const ac = new AbortController();
        const events = collect(store.watch({ kinds: ['vm'], selector: parseSelector('w=yes'), fromRevision: from }, ac.signal), 3);
        const a2 = await store.update({ kind: 'vm', idOrName: 'watch-a' }, { labels: { w: 'yes', x: '1' }, metadata: {}, spec: a.spec }, by);
        const gone = await store.delete({ kind: 'vm', idOrName: 'watch-a' }, by);
        const got = await events;
        ac.abort();
        assert.deepEqual(got.map((e) => [e.type, e.revision]), [
          ['put', a.revision],
          ['put', a2.revision],
          ['delete', gone.revision],
        ]);
      });

      test('many watchers each get a write once', async () => {
        const from = await store.revision();
        const ac = new AbortController();
        const watchers = Array.from({ length: 50 }, () => collect(store.watch({ kinds: ['site'], fromRevision: from }, ac.signal), 1));
        const s = await store.create({ kind: 'site', name: 'fanout', spec: {} }, by);
        const got = await Promise.all(watchers);
        ac.abort();
        for (const g of got) assert.deepEqual(g.map((e) => e.revision), [s.revision]);
      });

      test('a watch from the future is invalid and one from compacted history is gone', async () => {
        const now = await store.revision();
        assert.throws(() => store.watch({ fromRevision: now + 10 }, new AbortController().signal), (e: ApiError) => e.code === 'invalid');
        const v = await store.create(vm('compact-me'), by);
        for (let i = 0; i < 3; i++) await store.update({ kind: 'vm', idOrName: 'compact-me' }, { labels: { i: String(i) }, metadata: {}, spec: v.spec }, by);
        const { compactedRevision } = await store.compact({ retainRevisions: 0, retainMs: -1000, keepPerObject: 2 });
        assert.equal(compactedRevision, await store.revision());
        assert.throws(() => store.watch({ fromRevision: now }, new AbortController().signal), (e: ApiError) => e.code === 'gone');
        const h = await store.history({ kind: 'vm', idOrName: 'compact-me' });
        assert.equal(h.items.length, 2, 'the newest versions per object survive compaction');
        await rejectsWith(store.get({ kind: 'vm', idOrName: 'compact-me' }, { atRevision: v.revision }), 'gone');
        const live = new AbortController();
        const next = collect(store.watch({ kinds: ['vm'], fromRevision: compactedRevision }, live.signal), 1);
        const w = await store.create(vm('after-compaction'), by);
        assert.equal((await next)[0]!.revision, w.revision);
        live.abort();
      });
    });

    test('the audit log keeps entries newest first', async () => {
      const base = { time: new Date().toISOString(), source: '127.0.0.1', method: 'POST', status: 201, result: 'ok' };
      await store.appendAudit({ ...base, who: 'alice', path: '/v1/vms' });
      await store.appendAudit({ ...base, who: 'bob', path: '/v1/vms/x' });
      const entries = await store.listAudit({ limit: 2 });
      assert.deepEqual(entries.map((e) => e.who), ['bob', 'alice']);
      const older = await store.listAudit({ before: entries[1]!.id, limit: 10 });
      assert.ok(older.every((e) => e.id < entries[1]!.id));
    });

    test('credentials keep only hashes, are used once, and revoke per subject', async () => {
      const rev = await store.revision();
      const base = { type: 'join' as const, hash: 'a'.repeat(64), expiresAt: '2099-01-01T00:00:00Z', createdAt: '2026-01-01T00:00:00Z', createdBy: 'admin', data: {} };
      await store.putCredential({ ...base, id: 'c1', subject: 'host-1' });
      await store.putCredential({ ...base, id: 'c2', subject: 'host-2' });
      await store.putCredential({ ...base, id: 'c3', type: 'node', subject: 'host-1' });
      assert.equal((await store.getCredential('c1'))?.subject, 'host-1');
      assert.equal(await store.getCredential('nope'), undefined);
      assert.equal(await store.useCredential('c1', '2026-01-02T00:00:00Z'), true);
      assert.equal(await store.useCredential('c1', '2026-01-02T00:00:01Z'), false);
      assert.equal(await store.useCredential('nope', '2026-01-02T00:00:01Z'), false);
      assert.equal(await store.revokeCredentials({ subject: 'host-1' }), 2);
      assert.equal(await store.revokeCredentials({ subject: 'host-1' }), 0);
      assert.equal((await store.getCredential('c2'))?.revoked, undefined);
      assert.deepEqual((await store.listCredentials({ type: 'join' })).map((c) => [c.id, c.revoked ?? false]), [['c1', true], ['c2', false]]);
      assert.equal(await store.revision(), rev, 'credentials are not versioned objects');
    });

    test('acknowledged writes survive reopening the store', async (t) => {
      if (!h.reopen) return t.skip('backend does not persist');
      const v = await store.create(vm('durable', { metadata: { keep: true } }), by);
      store = await h.reopen();
      const back: AnyObject = await store.get({ kind: 'vm', idOrName: 'durable' });
      assert.deepEqual(back, v);
      assert.equal(await store.revision(), v.revision);
    });
  });
}
