/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
 * (--remote-debugging-pipe: commands on fd 3, replies and events on fd 4, NUL-separated JSON),
 * so the tests need no browser-automation package and no port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);

/** How a test that needs the browser proceeds without one: fail in CI (which installs it), skip elsewhere. */
export function browserMissing(): string | false {
  if (CHROMIUM) return false;
  if (process.env.CI) throw new Error('chromium is not installed: .ci/run installs it with apt-get');
  return 'chromium is not installed (apt-get install chromium)';
}

type Message = { id?: number; method?: string; params?: any; result?: any; error?: { message: string }; sessionId?: string };

export type ConsoleEntry = { readonly level: string; readonly text: string };

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners: Array<(m: Message) => void> = [];
  private buffer = '';

  private constructor(private readonly child: ChildProcess, private readonly userDir: string) {
    // A browser that exits answers nothing more: fail what waits instead of hanging the test file.
    child.once('exit', (code, signal) => this.failPending(`Chromium exited (${signal ?? code})`));
    const out = child.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nul;
      while ((nul = this.buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(this.buffer.slice(0, nul)) as Message;
        this.buffer = this.buffer.slice(nul + 1);
        if (message.id !== undefined && this.pending.has(message.id)) {
          const p = this.pending.get(message.id)!;
          this.pending.delete(message.id);
          if (message.error) p.reject(new Error(message.error.message));
          else p.resolve(message.result);
        } else for (const l of this.listeners) l(message);
      }
    });
  }

  static async launch(): Promise<Browser> {
    const userDir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-chromium-'));
    const child = spawn(CHROMIUM!, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
      '--disable-extensions', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars',
      '--mute-audio', `--user-data-dir=${userDir}`, '--remote-debugging-pipe', 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    return new Browser(child, userDir);
  }

  /** One DevTools command; rejects if Chromium has not answered within `timeoutMs`. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string, timeoutMs = 60_000): Promise<any> {
    const id = this.nextId++;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`Chromium did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = <T>(f: (v: T) => void) => (v: T) => (clearTimeout(timer), f(v));
      this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
    });
    (this.child.stdio[3] as Writable).write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    return promise;
  }

  private failPending(why: string): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new Error(why));
    }
  }

  on(listener: (m: Message) => void): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  async newPage(o: { width?: number; height?: number; offline?: boolean } = {}): Promise<Page> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId as string, targetId as string);
    for (const domain of ['Page', 'Runtime', 'Log', 'Network']) await page.send(`${domain}.enable`);
    await page.send('Emulation.setDeviceMetricsOverride', { width: o.width ?? 1280, height: o.height ?? 900, deviceScaleFactor: 1, mobile: false });
    if (o.offline) await page.send('Network.emulateNetworkConditions', { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    return page;
  }

  async close(): Promise<void> {
    await this.send('Browser.close').catch(() => undefined);
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      this.child.once('exit', () => (clearTimeout(timer), resolve()));
    });
    await rm(this.userDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

export class Page {
  /** Console errors and warnings, uncaught exceptions and browser log errors (CSP violations, failed loads). */
  readonly problems: ConsoleEntry[] = [];
  /** Every URL the page asked the network for. */
  readonly requests: string[] = [];
  private loaded: Array<() => void> = [];

  constructor(private readonly browser: Browser, readonly sessionId: string, private readonly targetId: string) {
    browser.on((m) => {
      if (m.sessionId !== sessionId) return;
      const p = m.params;
      if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'warning' || p.type === 'assert')) {
        this.problems.push({ level: p.type, text: p.args.map((a: any) => a.value ?? a.description ?? '').join(' ') });
      } else if (m.method === 'Runtime.exceptionThrown') {
        this.problems.push({ level: 'exception', text: p.exceptionDetails.exception?.description ?? p.exceptionDetails.text });
      } else if (m.method === 'Log.entryAdded' && (p.entry.level === 'error' || p.entry.level === 'warning')) {
        this.problems.push({ level: `log ${p.entry.level}`, text: `${p.entry.text} ${p.entry.url ?? ''}` });
      } else if (m.method === 'Network.requestWillBeSent') {
        this.requests.push(p.request.url);
      } else if (m.method === 'Page.loadEventFired') {
        for (const resolve of this.loaded.splice(0)) resolve();
      }
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    return this.browser.send(method, params, this.sessionId);
  }

  /** Navigates and waits for the load event. */
  async open(url: string, timeoutMs = 60_000): Promise<void> {
    const loaded = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${url} did not load in ${timeoutMs} ms`)), timeoutMs);
      this.loaded.push(() => (clearTimeout(timer), resolve()));
    });
    const { errorText } = await this.send('Page.navigate', { url });
    if (errorText) throw new Error(`navigating to ${url}: ${errorText}`);
    await loaded;
  }

  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (exceptionDetails) throw new Error(`evaluating ${expression}: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value as T;
  }

  /** Closes the tab through the browser: `Page.close` on the page's own session may never be answered, as the session goes with the page. */
  async close(): Promise<void> {
    await this.browser.send('Target.closeTarget', { targetId: this.targetId });
  }

  /** The whole page as a PNG. */
  async screenshot(): Promise<Buffer> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    return Buffer.from(data as string, 'base64');
  }
}
