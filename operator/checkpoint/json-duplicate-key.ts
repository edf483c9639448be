/**
 * The first key that appears twice in one object of a JSON text, or undefined.
 * JSON.parse keeps the last of two equal keys silently; a safetensors header
 * with `"w": {...}` twice would then say one thing to fedgit and another to a
 * reader that keeps the first. Call on text JSON.parse has already accepted.
 */
export function duplicateJsonKey(text: string): string | undefined {
  const keysByDepth: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const keys = keysByDepth[keysByDepth.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === '{') {
      keysByDepth.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      keysByDepth.push(null);
    } else if (c === '}' || c === ']') {
      keysByDepth.pop();
    } else if (c === ',') {
      expectKey = keysByDepth[keysByDepth.length - 1] !== null;
    }
  }
  return undefined;
}
