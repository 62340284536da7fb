import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderChanges, renderObjects, renderTable } from './output.ts';

test('tables are borderless, left-aligned, with "-" for empty cells', () => {
  assert.equal(
    renderTable(['NAME', 'IMAGE', 'CPUS'], [['web-1', 'debian-12', 2], ['db', undefined, ['a', 'b']]]),
    ['NAME    IMAGE       CPUS', 'web-1   debian-12   2', 'db      -           a,b'].join('\n'),
  );
});

test('objects print as a table, a JSON array, or YAML documents', () => {
  const objs = [{ name: 'a', n: 1 }, { name: 'b', n: 2 }];
  const cols = [{ header: 'NAME', value: (o: { name: string }) => o.name }];
  assert.equal(renderObjects(objs, 'table', cols), 'NAME\na\nb');
  assert.deepEqual(JSON.parse(renderObjects(objs, 'json', cols)), objs);
  assert.equal(renderObjects(objs, 'yaml', cols), 'name: a\nn: 1\n---\nname: b\nn: 2');
  assert.equal(renderObjects([], 'table', cols), 'No objects found.');
});

test('diff changes print one a line with +, - and ~', () => {
  assert.equal(
    renderChanges([
      { op: 'add', path: '/labels/env', to: 'prod' },
      { op: 'remove', path: '/spec/power', from: 'stopped' },
      { op: 'replace', path: '/spec/resources/cpus', from: 1, to: 2 },
    ]),
    '+ /labels/env: "prod"\n- /spec/power: "stopped"\n~ /spec/resources/cpus: 1 -> 2',
  );
  assert.equal(renderChanges([]), 'No differences.');
});
