/** CPU time of processes on this machine, read from Linux's /proc (the kernel counts in clock ticks of 10 ms). */
import { readFile } from 'node:fs/promises';

const CLOCK_TICKS_PER_S = 100;

/** User + system CPU of a process so far, in ms. */
export async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
}

/** The same for a process and every live descendant (a child that already exited is not counted). */
export async function treeCpuMs(pid: number): Promise<number> {
  let total = await cpuMsOf(pid).catch(() => 0);
  for (const child of await childrenOf(pid)) total += await treeCpuMs(child);
  return total;
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}
