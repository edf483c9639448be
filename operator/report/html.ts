/**
 * Making text safe for an HTML page. Everything an edge controls (edge names in trailers, tensor
 * names, metric names, rejection reasons, commit subjects) reaches the report only through these.
 */
import { escapeUntrusted } from '../text/untrusted.js';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for an element's content or a quoted attribute value: control characters made visible, bounded, then `& < > " '` escaped. */
export function escapeHtml(text: string, maxChars = 300): string {
  return escapeUntrusted(text, maxChars).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * JSON inside `<script type="application/json">`: `<` is written `\u003c` so that no value can
 * close the script element (`</script>`) or open a comment (`<!--`); U+2028/2029 are escaped too.
 * JSON.parse reads the same values back.
 */
export function renderScriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** A script library's text made safe to inline: nothing in it may end the element early. */
export function inlineScriptText(source: string): string {
  const text = source.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  if (/<\/script|<!--/i.test(text)) throw new Error('a bundled script contains </script or <!-- and cannot be inlined');
  return text;
}
