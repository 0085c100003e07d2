import { InvigilatorError } from '../../shared/errors';

/**
 * Only `wss://` leaves the machine. Plain `ws://` is allowed to a loopback
 * address (the collector on the same machine) or with an explicit insecure flag.
 */
export function checkCollectorUrl(raw: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvigilatorError('INV_ERR_CONFIG_INVALID', `collector URL ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new InvigilatorError('INV_ERR_CONFIG_INVALID', `collector URL must be wss:// (or ws:// to loopback), not ${url.protocol}`);
  if (url.protocol === 'ws:' && !allowInsecure && !isLoopback(url.hostname)) {
    throw new InvigilatorError(
      'INV_ERR_CONFIG_INVALID',
      `plain ws:// to ${url.hostname} would send events unencrypted; use wss:// or set collector.allowInsecure`,
    );
  }
  return url;
}

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
