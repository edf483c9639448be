/**
 * `fedgit keygen --out FILE [--agreement-out FILE2] [--name NAME]`: makes an Ed25519 signing key
 * for an edge or the aggregator, and with --agreement-out an edge's X25519 key for secure
 * aggregation too (the same rules for both files). The private key goes to FILE (mode 0600, never
 * overwritten, refused inside a git repository); what comes back is only
 * public: the key for the plan, its fingerprint and a YAML snippet to paste.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { NAME_PATTERN } from '../config/names.js';
import { generateKeyPair, fingerprint as fingerprintOf, writePrivateKey } from '../trust/keys.js';
import { generateAgreementKeyPair, parseAgreementPrivateKey } from '../secagg/agreement-keys.js';
import { KeyFileRefused } from '../trust/errors.js';
import { UsageError } from '../errors.js';

export type KeygenOptions = {
  /** Where the private key goes. */
  readonly out: string;
  /** Where an X25519 agreement key goes (secure aggregation), when wanted. */
  readonly agreementOut?: string;
  /** The participant (edge name or `aggregator`) the key is for; only used in the snippet. */
  readonly name?: string;
  /** Allow writing the key inside a git repository (default: refused, so it cannot be committed by accident). */
  readonly allowInsideGitRepository?: boolean;
};

export type KeygenResult = {
  /** `ed25519:<base64>`, for the plan. */
  readonly publicKey: string;
  /** `sha256:<16 hex>`, for display. */
  readonly fingerprint: string;
  /** The private key file written (absolute path). */
  readonly file: string;
  /** `x25519:<base64>`, for the plan, when an agreement key was made. */
  readonly agreementKey?: string;
  /** The agreement key file written (absolute path). */
  readonly agreementFile?: string;
  /** YAML to paste into the plan. */
  readonly snippet: string;
};

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** The nearest folder at or above `dir` that is a git working tree (holds `.git`) or a bare repository (holds `HEAD` and `objects/`), if any. */
async function enclosingRepository(dir: string): Promise<string | undefined> {
  for (let d = dir; ; d = path.dirname(d)) {
    if (await exists(path.join(d, '.git'))) return d;
    if ((await exists(path.join(d, 'HEAD'))) && (await exists(path.join(d, 'objects')))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

export function renderKeySnippet(publicKey: string, name?: string, agreementKey?: string): string {
  const agreement = agreementKey === undefined ? '' : `${name === undefined ? '' : '  '}agreementKey: ${agreementKey}\n`;
  return (name === undefined ? `publicKey: ${publicKey}\n` : `- name: ${name}\n  publicKey: ${publicKey}\n`) + agreement;
}

/** Refuses a key file inside a git repository unless allowed. */
async function refuseInsideRepository(file: string, options: KeygenOptions): Promise<void> {
  if (options.allowInsideGitRepository) return;
  const tree = await enclosingRepository(path.dirname(file));
  if (tree !== undefined) {
    throw new KeyFileRefused(`${file} is inside the git repository ${tree}; a private key must never enter a repository: write it elsewhere (for example ~/.fedgit/${options.name ?? 'key'}.pem)`, { file, tree });
  }
}

export async function keygen(options: KeygenOptions): Promise<KeygenResult> {
  if (options.name !== undefined && !NAME_PATTERN.test(options.name)) {
    throw new UsageError(`keygen: --name ${JSON.stringify(options.name.slice(0, 40))} must be 1–63 lowercase letters, digits or dashes`, { name: options.name.slice(0, 40) });
  }
  if (!options.out) throw new UsageError('keygen: give --out FILE, the private key file to create (outside any git repository)');
  const file = path.resolve(options.out);
  const agreementFile = options.agreementOut ? path.resolve(options.agreementOut) : undefined;
  if (agreementFile === file) throw new UsageError('keygen: --agreement-out must be another file than --out');
  await refuseInsideRepository(file, options);
  if (agreementFile) await refuseInsideRepository(agreementFile, options);
  const pair = generateKeyPair();
  await writePrivateKey(file, pair.privateKeyPem);
  const agreement = agreementFile ? generateAgreementKeyPair() : undefined;
  if (agreement) await writePrivateKey(agreementFile!, agreement.privateKeyPem, parseAgreementPrivateKey);
  return {
    publicKey: pair.publicKey, fingerprint: fingerprintOf(pair.publicKey), file,
    ...(agreement ? { agreementKey: agreement.publicKey, agreementFile: agreementFile! } : {}),
    snippet: renderKeySnippet(pair.publicKey, options.name, agreement?.publicKey),
  };
}

/** What the CLI prints: public facts only. */
export function renderKeygen(result: KeygenResult): string {
  return [
    `wrote private key ${result.file} (mode 0600): keep it secret, never commit it`,
    `public key fingerprint ${result.fingerprint}`,
    ...(result.agreementFile ? [`wrote agreement key ${result.agreementFile} (mode 0600, X25519, for secure aggregation): keep it secret, never commit it`] : []),
    'add to the plan:',
    result.snippet.trimEnd(),
    '',
  ].join('\n');
}
