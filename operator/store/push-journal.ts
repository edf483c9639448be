/**
 * What an edge pushed, kept on its own disk (never in git): in a plan without
 * signing keys, this is how an edge tells its own commits from ones someone
 * else placed on its branch. Written before the ref moves, so a push that
 * happened is always in the journal; a lost journal only makes the edge train
 * that round again and push on top, which is harmless.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export class PushJournal {
  private entries: Set<string> | undefined;

  /** `file` undefined: kept in memory only (tests, or a participant without a state folder). */
  constructor(private readonly file: string | undefined) {}

  private async load(): Promise<Set<string>> {
    if (this.entries) return this.entries;
    const text = this.file ? await readFile(this.file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e))) : '';
    this.entries = new Set(text.split('\n').filter((line) => /^[0-9a-f]{40} [0-9a-f]{40}$/.test(line)));
    return this.entries;
  }

  async has(planId: string, commit: string): Promise<boolean> {
    return (await this.load()).has(`${planId} ${commit}`);
  }

  async add(planId: string, commit: string): Promise<void> {
    const entries = await this.load();
    if (this.file) {
      await mkdir(path.dirname(this.file), { recursive: true });
      await appendFile(this.file, `${planId} ${commit}\n`, { mode: 0o600, flush: true });
    }
    entries.add(`${planId} ${commit}`);
  }
}
