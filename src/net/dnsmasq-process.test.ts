import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeRunner } from '../base/runner.ts';
import type { DnsmasqOptions } from './dnsmasq-config.ts';
import { applyDnsmasq, stopDnsmasq, type ProcessTable } from './dnsmasq-process.ts';

/** A process table where "dnsmasq" appears when started and dies on SIGTERM. */
class FakeProcesses implements ProcessTable {
  readonly live = new Map<number, string>();
  readonly signals: string[] = [];
  cmdline(pid: number) {
    return this.live.get(pid);
  }
  signal(pid: number, sig: 'SIGHUP' | 'SIGTERM' | 'SIGKILL') {
    this.signals.push(`${sig} ${pid}`);
    if (sig !== 'SIGHUP') this.live.delete(pid);
  }
}

function setup(t: { after: (fn: () => void) => void }) {
  const runDir = mkdtempSync(join(tmpdir(), 'crowd-dnsmasq-'));
  t.after(() => rmSync(runDir, { recursive: true, force: true }));
  const processes = new FakeProcesses();
  let nextPid = 100;
  const runner = new FakeRunner();
  const run = runner.run.bind(runner);
  runner.run = async (cmd) => {
    const result = await run(cmd);
    if (cmd.argv[0] === 'dnsmasq' && cmd.argv[1] !== '--test') {
      const pid = nextPid++;
      processes.live.set(pid, cmd.argv.join(' '));
      writeFileSync(join(runDir, 'blue.pid'), `${pid}\n`);
    }
    return result;
  };
  const opts: DnsmasqOptions = {
    network: 'blue',
    bridge: 'crbr1',
    runDir,
    ipv4: { subnet: '10.0.0.0/24', router: '10.0.0.1' },
    hosts: [{ mac: '52:54:00:00:00:01', ipv4: '10.0.0.5' }],
    staticOnly: true,
  };
  return { runDir, processes, runner, opts, deps: { runner, processes } };
}

test('dnsmasq is started once and left alone while nothing changes', async (t) => {
  const { runner, opts, deps, runDir } = setup(t);
  assert.equal(await applyDnsmasq(opts, deps), 'started');
  assert.equal(await applyDnsmasq(opts, deps), 'unchanged');
  assert.deepEqual(runner.lines(), [`dnsmasq --test --conf-file=${runDir}/blue.conf.new`, `dnsmasq --conf-file=${runDir}/blue.conf`]);
  assert.equal(readFileSync(join(runDir, 'blue.hosts'), 'utf8'), '52:54:00:00:00:01,10.0.0.5\n');
});

test('a change of static leases only is a SIGHUP, a config change a restart', async (t) => {
  const { processes, opts, deps, runDir } = setup(t);
  await applyDnsmasq(opts, deps);
  const hosts = [...opts.hosts, { mac: '52:54:00:00:00:02', ipv4: '10.0.0.6' }];
  assert.equal(await applyDnsmasq({ ...opts, hosts }, deps), 'reloaded');
  assert.match(readFileSync(join(runDir, 'blue.hosts'), 'utf8'), /10\.0\.0\.6/);
  assert.equal(await applyDnsmasq({ ...opts, hosts, mtu: 1400 }, deps), 'restarted');
  assert.deepEqual(processes.signals, ['SIGHUP 100', 'SIGTERM 100']);
  assert.deepEqual([...processes.live.keys()], [101]);
});

test('a dnsmasq that died is started again; a stranger holding the old pid is not signalled', async (t) => {
  const { processes, opts, deps } = setup(t);
  await applyDnsmasq(opts, deps);
  processes.live.set(100, 'sleep 1000');
  assert.equal(await applyDnsmasq(opts, deps), 'started');
  assert.deepEqual(processes.signals, []);
});

test('a config dnsmasq rejects leaves the running one and its files untouched', async (t) => {
  const { runner, processes, opts, deps, runDir } = setup(t);
  await applyDnsmasq(opts, deps);
  const before = readFileSync(join(runDir, 'blue.conf'), 'utf8');
  runner.on('dnsmasq --test', { code: 1, stderr: 'dnsmasq: bad option' });
  await assert.rejects(applyDnsmasq({ ...opts, mtu: 1400 }, deps), /Cannot start dnsmasq for network "blue": dnsmasq rejects the config/);
  assert.equal(readFileSync(join(runDir, 'blue.conf'), 'utf8'), before);
  assert.equal(existsSync(join(runDir, 'blue.conf.new')), false);
  assert.deepEqual(processes.signals, []);
});

test('stopping kills our dnsmasq and removes its files', async (t) => {
  const { processes, opts, deps, runDir } = setup(t);
  await applyDnsmasq(opts, deps);
  await stopDnsmasq({ network: 'blue', runDir }, { processes });
  assert.deepEqual(processes.signals, ['SIGTERM 100']);
  assert.equal(existsSync(join(runDir, 'blue.conf')), false);
  assert.equal(existsSync(join(runDir, 'blue.pid')), false);
});
