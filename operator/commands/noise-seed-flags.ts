/**
 * `fedgit audit --noise-seed-file FILE | --noise-secret FILE`: what an auditor of a DP merge is
 * given to recompute its noise. Read from files, never from the command line, so neither lands in
 * a shell history or a process listing; errors name the file, never its content.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { SEED_BYTES } from '../privacy/gaussian-noise.js';
import { readNoiseSecret } from '../privacy/noise-secret.js';
import type { AuditOptions } from './audit.js';

export async function noiseAuditOptions(flags: { readonly 'noise-seed-file'?: string; readonly 'noise-secret'?: string }): Promise<AuditOptions> {
  const seedFile = flags['noise-seed-file'];
  const secretFile = flags['noise-secret'];
  if (seedFile && secretFile) throw new UsageError('audit: give --noise-seed-file or --noise-secret, not both');
  if (secretFile) return { noiseSecret: await readNoiseSecret(secretFile) };
  if (!seedFile) return {};
  const text = (await readFile(seedFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`audit: cannot read the noise seed file ${seedFile}: ${e.code ?? 'error'}`);
  })).trim();
  if (!new RegExp(`^[0-9a-fA-F]{${SEED_BYTES * 2}}$`).test(text)) throw new UsageError(`audit: ${seedFile} must hold one round's noise seed as ${SEED_BYTES * 2} hexadecimal digits`);
  return { noiseSeed: Buffer.from(text, 'hex') };
}
