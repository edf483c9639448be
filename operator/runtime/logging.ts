/**
 * Structured logs: one JSON-lines file per participant and short readable
 * console lines. Values under secret-looking keys are masked before any
 * transport sees them.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import winston from 'winston';
import { escapeUntrusted } from '../text/untrusted.js';

export type Logger = winston.Logger;

const SECRET_KEY = /token|secret|password|passwd|authorization|api.?key|private.?key|credential/i;

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1)]));
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) if (SECRET_KEY.test(key)) info[key] = '[redacted]';
  for (const [key, value] of Object.entries(info)) if (value && typeof value === 'object') info[key] = redact(value);
  return info;
});

const consoleLine = winston.format.printf((info) => {
  const time = new Date(String(info.timestamp)).toISOString().slice(11, 19);
  const level = info.level === 'info' ? '' : ` ${info.level.toUpperCase()}`;
  // Messages quote what edges wrote (commit reasons, tensor names): no control character reaches the terminal.
  return `${time} ${String(info.participant).padEnd(12)}${level} ${escapeUntrusted(String(info.message), 4000)}`;
});

export type LoggerOptions = { participant: string; logDir?: string; console?: boolean; level?: string };

export function createLogger(o: LoggerOptions): Logger {
  const transports: winston.transport[] = [];
  if (o.console !== false) {
    transports.push(new winston.transports.Console({ format: consoleLine, stderrLevels: ['error', 'warn'] }));
  }
  if (o.logDir) {
    mkdirSync(o.logDir, { recursive: true });
    transports.push(new winston.transports.File({ filename: path.join(o.logDir, `${o.participant}.jsonl`), format: winston.format.json() }));
  }
  return winston.createLogger({
    level: o.level ?? process.env.FEDGIT_LOG_LEVEL ?? 'info',
    defaultMeta: { participant: o.participant },
    format: winston.format.combine(redactFormat(), winston.format.timestamp()),
    transports: transports.length ? transports : [new winston.transports.Console({ silent: true })],
  });
}

/** Flushes file transports before the process exits. */
export function closeLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
    setTimeout(resolve, 500).unref();
  });
}
