/** Just enough of a PNG reader to check a screenshot: 8-bit RGB or RGBA, not interlaced (what Chromium writes). */
import { inflateSync } from 'node:zlib';

export type Image = { readonly width: number; readonly height: number; readonly channels: number; readonly pixels: Uint8Array };

export function decodePng(png: Buffer): Image {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let at = 8;
  let width = 0, height = 0, channels = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0) throw new Error(`unsupported PNG: depth ${depth}, colour type ${colour}, interlace ${interlace}`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[out + x - channels]! : 0;
      const b = y > 0 ? pixels[out - stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[out - stride + x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[out + x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Standard deviation of luminance and number of distinct colours (sampled): a blank page has ~0 and 1. */
export function pixelStats(image: Image): { stdDev: number; colours: number; nonWhiteFraction: number } {
  let sum = 0, sumSq = 0, n = 0, nonWhite = 0;
  const colours = new Set<number>();
  const { pixels, channels } = image;
  for (let i = 0; i < pixels.length; i += channels) {
    const r = pixels[i]!, g = pixels[i + 1]!, b = pixels[i + 2]!;
    const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    sum += lum;
    sumSq += lum * lum;
    n++;
    if (r < 250 || g < 250 || b < 250) nonWhite++;
    if (colours.size < 100_000) colours.add((r << 16) | (g << 8) | b);
  }
  const mean = sum / n;
  return { stdDev: Math.sqrt(Math.max(0, sumSq / n - mean * mean)), colours: colours.size, nonWhiteFraction: nonWhite / n };
}
