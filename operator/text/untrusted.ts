/**
 * Text an edge controls (tensor names, trailer values, reasons built from
 * them) before it reaches a commit, a log line or a console.
 *
 * Control characters are what break things downstream: a NUL makes a commit
 * fail `git fsck --strict` (and then every push to a server that checks),
 * ESC and CR rewrite a terminal, a newline forges a trailer or a log line,
 * and bidirectional overrides make text read differently from what it is.
 * They become visible escapes (`\x00`, `\u202e`); everything else is kept, so
 * ordinary names read unchanged. Length is bounded so that a 2 MB name cannot
 * make a 2 MB commit or log line.
 */

/** C0 controls, DEL, C1 controls, and Unicode format characters that reorder or hide text. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export const DEFAULT_MAX_CHARS = 200;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with unsafe characters escaped, cut to `maxChars` (the cut is marked with the length left out). */
export function escapeUntrusted(text: string, maxChars = DEFAULT_MAX_CHARS): string {
  const escaped = text.replace(UNSAFE, escapeChar);
  if (escaped.length <= maxChars) return escaped;
  // Do not cut a surrogate pair in half: a lone surrogate is not valid UTF-8 in a commit.
  let cut = maxChars;
  const last = escaped.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${escaped.slice(0, cut)}…[${escaped.length - cut} more characters]`;
}
