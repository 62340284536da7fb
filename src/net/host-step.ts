import { Reverter } from '../base/reverter.ts';
import { CommandError, type Runner } from '../base/runner.ts';

/** One host change as a command, with the commands that undo it (run in order). */
export interface HostStep {
  argv: string[];
  undo: string[][];
}

/** An `ip` step a batch line can carry: words that need no quoting. */
const batchable = (s: HostStep) => s.argv[0] === 'ip' && s.argv.length > 1 && s.argv.every((a) => /^[^\s"'#\\]+$/.test(a));

/**
 * Runs steps in order; if one fails, the undos of the steps already done run in
 * reverse and the first error is rethrown, so a host is never left half-changed.
 * Runs of consecutive `ip` steps go through one `ip -batch -` (a thousand taps
 * are one process, not thousands). A batch that fails names its line, so
 * exactly the lines before it count as done; one that dies without a line
 * number (ip exits at once on some errors) is undone whole — undos restore
 * the state before the plan, so undoing a line that never ran is harmless —
 * and its steps run again one by one to find and report the failing one.
 */
export async function runHostSteps(runner: Runner, steps: HostStep[]): Promise<void> {
  const reverter = new Reverter();
  const undo = async (step: HostStep) => {
    for (const argv of step.undo) await runner.run({ argv });
  };
  const one = async (step: HostStep) => {
    await runner.run({ argv: step.argv });
    reverter.add(() => undo(step));
  };
  try {
    for (let i = 0; i < steps.length; ) {
      let end = i;
      while (end < steps.length && batchable(steps[end]!)) end++;
      if (end - i < 2) {
        await one(steps[i++]!);
        continue;
      }
      const batch = steps.slice(i, end);
      i = end;
      const input = batch.map((s) => `${s.argv.slice(1).join(' ')}\n`).join('');
      const failed = await runner.run({ argv: ['ip', '-batch', '-'], input, timeoutMs: 60_000 + 100 * batch.length }).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (failed === undefined) {
        for (const step of batch) reverter.add(() => undo(step));
        continue;
      }
      if (!(failed instanceof CommandError)) throw failed;
      const line = Number(/Command failed -:(\d+)/.exec(failed.result.stderr)?.[1]);
      if (Number.isInteger(line) && line >= 1 && line <= batch.length) {
        for (const step of batch.slice(0, line - 1)) reverter.add(() => undo(step));
        throw new CommandError(batch[line - 1]!.argv, failed.result);
      }
      for (const step of [...batch].reverse()) await undo(step).catch(() => undefined);
      for (const step of batch) await one(step);
    }
    reverter.success();
  } finally {
    await reverter.revert();
  }
}
