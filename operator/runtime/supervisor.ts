/**
 * Keeps child participant processes alive on one machine: a child that dies
 * is restarted after a short back-off, with a visible line saying so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export type ChildSpec = { readonly name: string; readonly args: readonly string[]; readonly env?: NodeJS.ProcessEnv };
export type SupervisorOptions = { readonly say: (line: string) => void; readonly maxBackoffMs?: number };

type Managed = { spec: ChildSpec; child: ChildProcess | null; restarts: number; timer?: NodeJS.Timeout };

export class Supervisor {
  private readonly children = new Map<string, Managed>();
  private stopping = false;

  constructor(private readonly o: SupervisorOptions) {}

  start(spec: ChildSpec): void {
    const managed: Managed = { spec, child: null, restarts: 0 };
    this.children.set(spec.name, managed);
    this.launch(managed);
  }

  pid(name: string): number | undefined {
    return this.children.get(name)?.child?.pid;
  }

  private launch(m: Managed): void {
    const child = spawn(process.execPath, [...m.spec.args], { env: { ...process.env, ...m.spec.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    for (const stream of [child.stdout, child.stderr]) readline.createInterface({ input: stream }).on('line', (line) => this.o.say(line));
    const startedAt = Date.now();
    child.on('exit', (code, signal) => {
      m.child = null;
      if (this.stopping) return;
      if (Date.now() - startedAt > 30_000) m.restarts = 0;
      const delay = Math.min(this.o.maxBackoffMs ?? 10_000, 500 * 2 ** m.restarts++);
      this.o.say(`[run] ${m.spec.name} exited (${signal ?? `code ${code}`}); restarting in ${(delay / 1000).toFixed(1)} s`);
      m.timer = setTimeout(() => this.launch(m), delay);
    });
  }

  async stopAll(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    const waits = [...this.children.values()].map((m) => {
      clearTimeout(m.timer);
      const child = m.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => (clearTimeout(kill), resolve()));
        child.kill('SIGTERM');
      });
    });
    await Promise.all(waits);
  }
}
