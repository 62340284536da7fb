import type { Command, CommandResult, Runner } from '../base/runner.ts';

/**
 * Runs every command inside a network namespace (`ip netns exec NS …`), so the
 * same appliers drive a real host or a namespaced test "host".
 */
export class NamespacedRunner implements Runner {
  constructor(
    private readonly inner: Runner,
    readonly namespace: string,
  ) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(namespace)) throw new Error(`Cannot use network namespace "${namespace}": not a plain name`);
  }

  run(cmd: Command): Promise<CommandResult> {
    return this.inner.run({ ...cmd, argv: ['ip', 'netns', 'exec', this.namespace, ...cmd.argv] });
  }
}
