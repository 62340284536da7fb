#!/usr/bin/env node
/**
 * The `crowd` binary: long-running parts (`server`, `up`, `agent`) get
 * their own entry points; everything else is the CLI. Loaded lazily so the CLI
 * does not pay for the server's imports.
 */
const [command, ...rest] = process.argv.slice(2);

async function main(): Promise<number> {
  switch (command) {
    case 'server': {
      const { serverMain } = await import('./server/main.ts');
      await serverMain(rest);
      return 0;
    }
    case 'up': {
      const { upMain } = await import('./server/main.ts');
      const { localAgent } = await import('./local-agent.ts');
      await upMain(rest, undefined, localAgent);
      return 0;
    }
    case 'agent': {
      const { agentMain } = await import('./agent/main.ts');
      await agentMain(rest);
      return 0;
    }
    default: {
      const { runCli } = await import('./cli/main.ts');
      return runCli(process.argv.slice(2), {
        stdout: process.stdout,
        stderr: process.stderr,
        stdin: process.stdin,
        env: process.env,
      });
    }
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`crowd: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
