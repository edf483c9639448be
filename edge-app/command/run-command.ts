/**
 * Runs one external command in its own process group and waits for it.
 * Abort and timeout send SIGTERM to the whole group, then SIGKILL after a grace
 * period; when the leader exits, any survivors of its group are killed too, so
 * nothing the command started outlives it. stdout/stderr are split into lines
 * and handed to callbacks (never to the console); the last stderr lines are
 * kept for error messages.
 */
import { spawn } from 'node:child_process';

export type RunOptions = {
  readonly program: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
  readonly timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL. */
  readonly killGraceMs: number;
  readonly onStdoutLine: (line: string) => void;
  readonly onStderrLine: (line: string) => void;
  readonly stderrTailLines?: number;
};

export type RunOutcome =
  | { readonly kind: 'exited'; readonly code: number; readonly stderrTail: readonly string[]; readonly durationMs: number }
  | { readonly kind: 'signalled'; readonly signal: string; readonly stderrTail: readonly string[]; readonly durationMs: number }
  | { readonly kind: 'timed-out'; readonly stderrTail: readonly string[]; readonly durationMs: number }
  | { readonly kind: 'aborted'; readonly stderrTail: readonly string[]; readonly durationMs: number }
  | { readonly kind: 'spawn-failed'; readonly message: string; readonly stderrTail: readonly string[]; readonly durationMs: number };

/** Process groups still alive, killed if the operator itself exits. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone. EPERM cannot happen for our own children.
  }
}

export function runCommand(options: RunOptions): Promise<RunOutcome> {
  installExitHook();
  const started = Date.now();
  const tailSize = options.stderrTailLines ?? 20;
  const stderrTail: string[] = [];
  const elapsed = () => Date.now() - started;
  if (options.signal.aborted) return Promise.resolve({ kind: 'aborted', stderrTail, durationMs: 0 });

  return new Promise<RunOutcome>((resolve) => {
    const child = spawn(options.program, [...options.args], {
      cwd: options.cwd,
      env: options.env,
      detached: true, // own process group: -pid reaches the command and everything it starts
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let settled = false;
    const pgid = child.pid;
    if (pgid !== undefined) liveGroups.add(pgid);
    const stopping = stopOnAbortOrTimeout(pgid, options);

    const finish = (outcome: RunOutcome) => {
      if (settled) return;
      settled = true;
      stopping.release();
      if (pgid !== undefined) {
        killGroup(pgid, 'SIGKILL'); // survivors of the group (background children) die with the leader
        liveGroups.delete(pgid);
      }
      resolve(outcome);
    };

    splitLines(child.stdout, options.onStdoutLine);
    splitLines(child.stderr, (line) => {
      stderrTail.push(line);
      if (stderrTail.length > tailSize) stderrTail.shift();
      options.onStderrLine(line);
    });

    child.on('error', (err) => {
      finish({ kind: 'spawn-failed', message: err.message, stderrTail, durationMs: elapsed() });
    });
    // On 'exit' the group's survivors are killed at once (so a background child
    // cannot hold the pipes open); then wait for the pipes to drain, at most 1 s.
    child.on('exit', (code, signal) => {
      if (pgid !== undefined) killGroup(pgid, 'SIGKILL');
      const report = () => {
        const why = stopping.why();
        if (why !== undefined) finish({ kind: why, stderrTail, durationMs: elapsed() });
        else if (signal !== null) finish({ kind: 'signalled', signal, stderrTail, durationMs: elapsed() });
        else finish({ kind: 'exited', code: code ?? -1, stderrTail, durationMs: elapsed() });
      };
      const drainTimer = setTimeout(report, 1000);
      child.on('close', () => {
        clearTimeout(drainTimer);
        report();
      });
    });
  });
}

/**
 * On abort or at the timeout: SIGTERM to the process group, SIGKILL after the grace period.
 * `why` is what stopped it (first one wins), or undefined; `release` clears the timers and the listener.
 */
function stopOnAbortOrTimeout(pgid: number | undefined, options: RunOptions): { why(): 'timed-out' | 'aborted' | undefined; release(): void } {
  let stopping: 'timed-out' | 'aborted' | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let timeoutTimer: NodeJS.Timeout | undefined;
  const stop = (why: 'timed-out' | 'aborted') => {
    if (stopping !== undefined || pgid === undefined) return;
    stopping = why;
    killGroup(pgid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pgid, 'SIGKILL'), options.killGraceMs);
  };
  const onAbort = () => stop('aborted');
  options.signal.addEventListener('abort', onAbort, { once: true });
  if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
    timeoutTimer = setTimeout(() => stop('timed-out'), options.timeoutMs);
  }
  return {
    why: () => stopping,
    release() {
      clearTimeout(killTimer);
      clearTimeout(timeoutTimer);
      options.signal.removeEventListener('abort', onAbort);
    },
  };
}

function splitLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      onLine(pending.slice(0, nl).replace(/\r$/, ''));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
    }
    if (pending.length > 64 * 1024) {
      onLine(pending);
      pending = '';
    }
  });
  stream.on('end', () => {
    if (pending.length > 0) onLine(pending);
    pending = '';
  });
  stream.on('error', () => undefined);
}
