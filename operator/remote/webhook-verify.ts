/**
 * Pure checks for push webhooks from Gitea, GitHub and GitLab: which provider
 * sent a request, whether its signature or token is right, and what the
 * payload says. No I/O; the HTTP endpoint is in webhook.ts.
 *
 * - Gitea: `X-Gitea-Signature` = hex HMAC-SHA256 of the raw body (Gitea also
 *   sends GitHub-style headers; its own are checked first).
 * - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
 * - GitLab: `X-Gitlab-Token` equal to the secret.
 * All comparisons are constant-time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type WebhookProvider = 'gitea' | 'github' | 'gitlab';

/** A trigger only: reconcile reads the repositories itself. */
export type PushEvent = { provider: WebhookProvider; repository: string; ref: string; before?: string; after?: string };

/** Lower-cased header names. */
export type WebhookHeaders = Readonly<Record<string, string | string[] | undefined>>;

export type CredentialCheck = { ok: true } | { ok: false; status: 401 | 403; reason: string };

export type PayloadParse =
  | { kind: 'push'; event: PushEvent }
  | { kind: 'ping' }
  | { kind: 'invalid'; reason: string };

function header(headers: WebhookHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function detectProvider(headers: WebhookHeaders): WebhookProvider | undefined {
  if (header(headers, 'x-gitea-signature') !== undefined || header(headers, 'x-gitea-event') !== undefined) return 'gitea';
  if (header(headers, 'x-gitlab-token') !== undefined || header(headers, 'x-gitlab-event') !== undefined) return 'gitlab';
  if (header(headers, 'x-hub-signature-256') !== undefined || header(headers, 'x-github-event') !== undefined) return 'github';
  return undefined;
}

/** Equal strings, in time independent of where they differ (and of their lengths). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

export function hmacHex(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Whether the request carries the credential its provider uses at all (checked before the body is read). */
export function credentialPresent(provider: WebhookProvider, headers: WebhookHeaders): boolean {
  switch (provider) {
    case 'gitea':
      return !!header(headers, 'x-gitea-signature');
    case 'github':
      return !!header(headers, 'x-hub-signature-256');
    case 'gitlab':
      return !!header(headers, 'x-gitlab-token');
    default: {
      const never: never = provider;
      return never;
    }
  }
}

/** The GitLab token needs no body; signatures do. */
export function checkCredentials(provider: WebhookProvider, headers: WebhookHeaders, body: Buffer, secret: string): CredentialCheck {
  switch (provider) {
    case 'gitea': {
      const given = header(headers, 'x-gitea-signature');
      if (!given) return { ok: false, status: 401, reason: 'missing X-Gitea-Signature' };
      return constantTimeEqual(given.trim().toLowerCase(), hmacHex(secret, body)) ? { ok: true } : { ok: false, status: 403, reason: 'wrong X-Gitea-Signature' };
    }
    case 'github': {
      const given = header(headers, 'x-hub-signature-256');
      if (!given) return { ok: false, status: 401, reason: 'missing X-Hub-Signature-256' };
      const m = /^sha256=(.*)$/i.exec(given.trim());
      if (!m) return { ok: false, status: 403, reason: 'X-Hub-Signature-256 is not sha256=<hex>' };
      return constantTimeEqual(m[1]!.toLowerCase(), hmacHex(secret, body)) ? { ok: true } : { ok: false, status: 403, reason: 'wrong X-Hub-Signature-256' };
    }
    case 'gitlab': {
      const given = header(headers, 'x-gitlab-token');
      if (!given) return { ok: false, status: 401, reason: 'missing X-Gitlab-Token' };
      return constantTimeEqual(given, secret) ? { ok: true } : { ok: false, status: 403, reason: 'wrong X-Gitlab-Token' };
    }
    default: {
      const never: never = provider;
      return never;
    }
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Reads an authenticated body. Tag pushes count as pushes (their ref is refs/tags/…). */
export function parseWebhookPayload(provider: WebhookProvider, headers: WebhookHeaders, body: Buffer): PayloadParse {
  const eventName = (header(headers, provider === 'gitea' ? 'x-gitea-event' : provider === 'github' ? 'x-github-event' : 'x-gitlab-event') ?? '').trim();
  if ((provider === 'github' || provider === 'gitea') && eventName.toLowerCase() === 'ping') return { kind: 'ping' };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { kind: 'invalid', reason: 'malformed JSON' };
  }
  if (!isRecord(json)) return { kind: 'invalid', reason: 'payload is not a JSON object' };

  if (provider === 'gitlab') {
    const kind = json.object_kind;
    if (kind !== 'push' && kind !== 'tag_push') return { kind: 'invalid', reason: `not a push event (object_kind ${JSON.stringify(String(kind ?? ''))})` };
    if (eventName && !/^(Push|Tag Push) Hook$/i.test(eventName)) return { kind: 'invalid', reason: `not a push event (X-Gitlab-Event ${JSON.stringify(eventName)})` };
    const project = isRecord(json.project) ? json.project : {};
    const repository = nonEmpty(project.path_with_namespace) ? project.path_with_namespace : nonEmpty(project.git_http_url) ? project.git_http_url : undefined;
    return pushEvent(provider, repository, json.ref, json.before, json.after);
  }

  if (eventName && eventName.toLowerCase() !== 'push') return { kind: 'invalid', reason: `not a push event (${JSON.stringify(eventName)})` };
  // GitHub pings without the header still carry `zen` and `hook_id`.
  if (!eventName && 'zen' in json && 'hook_id' in json) return { kind: 'ping' };
  const repo = isRecord(json.repository) ? json.repository : {};
  const repository = nonEmpty(repo.full_name) ? repo.full_name : nonEmpty(repo.clone_url) ? repo.clone_url : undefined;
  return pushEvent(provider, repository, json.ref, json.before, json.after);
}

const OBJECT_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/i;

function pushEvent(provider: WebhookProvider, repository: string | undefined, ref: unknown, before: unknown, after: unknown): PayloadParse {
  if (!repository) return { kind: 'invalid', reason: 'push event without a repository name' };
  if (!nonEmpty(ref)) return { kind: 'invalid', reason: 'push event without a ref' };
  const event: PushEvent = { provider, repository, ref };
  if (nonEmpty(before) && OBJECT_ID.test(before)) event.before = before.toLowerCase();
  if (nonEmpty(after) && OBJECT_ID.test(after)) event.after = after.toLowerCase();
  return { kind: 'push', event };
}
