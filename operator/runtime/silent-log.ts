/** A Log that drops every line: the default where a caller gives none. */
import type { Log } from '../contracts.js';

const drop = (): void => undefined;

export const SILENT: Log = { error: drop, warn: drop, info: drop, debug: drop };
