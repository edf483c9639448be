import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { createLogger, closeLogger, redact } from '../operator/runtime/logging.js';
import { tempDir } from './helpers/temp.js';

test('values under secret-looking keys never reach a log', async (t) => {
  assert.deepEqual(redact({ token: 'abc', nested: { apiKey: 'k', password: 'p', ok: 1 }, list: [{ secret: 's' }] }), {
    token: '[redacted]', nested: { apiKey: '[redacted]', password: '[redacted]', ok: 1 }, list: [{ secret: '[redacted]' }],
  });
  const dir = await tempDir(t);
  const log = createLogger({ participant: 'edge-x', logDir: dir, console: false });
  log.info('pushing', { authorization: 'Basic c2VjcmV0', remote: { token: 'ghp_123456' }, round: 2 });
  await closeLogger(log);
  const text = await readFile(path.join(dir, 'edge-x.jsonl'), 'utf8');
  assert.doesNotMatch(text, /c2VjcmV0|ghp_123456/);
  assert.deepEqual(JSON.parse(text.trim()).round, 2);
});
