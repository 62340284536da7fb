import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ifbName, parseQdiscs, planTc, type TcState } from './tc-plan.ts';

const ifb = ifbName('crtap1');
const lines = (steps: { argv: string[] }[]) => steps.map((s) => s.argv.join(' '));
const empty = (): TcState => ({ qdiscs: new Map(), ifbs: new Map() });

test('qdiscs are read per device, only a root tbf 1: counting as ours', () => {
  const json = JSON.stringify([
    { kind: 'tbf', handle: '1:', dev: 'crtap1', root: true, options: { rate: 1250000 } },
    { kind: 'ingress', handle: 'ffff:', dev: 'crtap1', parent: 'ffff:fff1', options: {} },
    { kind: 'tbf', handle: '8001:', dev: 'eth0', root: true, options: { rate: 99 } },
  ]);
  assert.deepEqual([...parseQdiscs(json)], [['crtap1', { tbfRate: 1250000, ingress: true }], ['eth0', { ingress: false }]]);
});

test('both limits on a bare tap: tbf on the tap, ingress redirected to a shaped ifb', () => {
  assert.match(ifb, /^ifb[0-9a-f]{12}$/);
  assert.deepEqual(lines(planTc([{ tap: 'crtap1', ingressMbit: 10, egressMbit: 5 }], empty())), [
    'tc qdisc replace dev crtap1 root handle 1: tbf rate 10mbit burst 32768 latency 50ms',
    `ip link add name ${ifb} type ifb`,
    `ip link set dev ${ifb} alias crowd:ifb:crtap1`,
    `ip link set dev ${ifb} up`,
    `tc qdisc replace dev ${ifb} root handle 1: tbf rate 5mbit burst 32768 latency 50ms`,
    'tc qdisc add dev crtap1 handle ffff: ingress',
    `tc filter add dev crtap1 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ${ifb}`,
  ]);
});

const shaped = (): TcState => ({
  qdiscs: new Map([
    ['crtap1', { tbfRate: 1250000, ingress: true }],
    [ifb, { tbfRate: 625000, ingress: false }],
  ]),
  ifbs: new Map([[ifb, { name: ifb, kind: 'ifb', mtu: 1500, up: true, addresses: [], alias: 'crowd:ifb:crtap1' }]]),
});

test('limits already in place need no step', () => {
  assert.deepEqual(planTc([{ tap: 'crtap1', ingressMbit: 10, egressMbit: 5 }], shaped()), []);
});

test('a changed rate is replaced with an undo back to the old rate', () => {
  const steps = planTc([{ tap: 'crtap1', ingressMbit: 100, egressMbit: 5 }], shaped());
  assert.deepEqual(lines(steps), ['tc qdisc replace dev crtap1 root handle 1: tbf rate 100mbit burst 50000 latency 50ms']);
  assert.deepEqual(steps[0]!.undo, [['tc', 'qdisc', 'replace', 'dev', 'crtap1', 'root', 'handle', '1:', 'tbf', 'rate', '10mbit', 'burst', '32768', 'latency', '50ms']]);
});

test('limits that were lifted, and ifbs of NICs that left, are removed', () => {
  assert.deepEqual(lines(planTc([{ tap: 'crtap1' }], shaped())), ['tc qdisc del dev crtap1 root', 'tc qdisc del dev crtap1 ingress', `ip link del ${ifb}`]);
  assert.deepEqual(lines(planTc([], shaped())), [`ip link del ${ifb}`]);
});

test('bad limits are refused', () => {
  assert.throws(() => planTc([{ tap: 'crtap1', ingressMbit: 0 }], empty()), /Cannot plan bandwidth of tap "crtap1": ingress 0 Mbit\/s is outside 1-100000/);
  assert.throws(() => planTc([{ tap: 'crtap1', egressMbit: 1.5 }], empty()), /egress 1.5 Mbit\/s/);
  assert.throws(() => planTc([{ tap: 'x y' }], empty()), /not a valid interface name/);
});
