import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';

/**
 * The tray's windows come from its own scheme, `invigilator://tray/<window>/`,
 * not from `file://`: Electron's security guidance prefers a custom protocol,
 * Chromium will not load module scripts from a `file://` page, and a handler
 * of our own can add the headers a `<meta>` cannot carry (frame-ancestors).
 * It serves the built renderer folder and nothing outside it.
 */
export const APP_SCHEME = 'invigilator';
export const APP_HOST = 'tray';

/** Every page's policy, as a header; each page repeats all but frame-ancestors in a meta tag. */
export const RENDERER_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export function windowUrl(name: string): string {
  return `${APP_SCHEME}://${APP_HOST}/${name}/index.html`;
}

export interface SchemeResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The file a request names, if it is one the renderer folder may serve. */
export function rendererFileFor(rendererDir: string, url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host !== APP_HOST) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(parsed.pathname);
  } catch {
    return undefined;
  }
  if (path.includes('\0') || path.includes('\\') || path.split('/').includes('..')) return undefined;
  const root = resolve(rendererDir);
  const file = resolve(root, `.${path}`);
  if (!file.startsWith(root + sep) || !TYPES[extname(file)]) return undefined;
  return file;
}

/** Answers one request of the scheme: the file with its type and the security headers, or 404. */
export async function serveRendererRequest(rendererDir: string, url: string): Promise<SchemeResponse> {
  const headers = { 'content-security-policy': RENDERER_CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };
  const file = rendererFileFor(rendererDir, url);
  if (!file) return { status: 404, headers, body: Buffer.alloc(0) };
  try {
    const body = await readFile(file);
    return { status: 200, headers: { ...headers, 'content-type': TYPES[extname(file)]! }, body };
  } catch {
    return { status: 404, headers, body: Buffer.alloc(0) };
  }
}
