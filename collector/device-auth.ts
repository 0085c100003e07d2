import { createHash, randomBytes } from 'node:crypto';

/** Device secrets and nonces are 32 random bytes, base64url on the wire. */
export const newSecret = (): Buffer => randomBytes(32);
export const newNonce = (): string => randomBytes(32).toString('base64url');
/** Tokens carry a prefix saying what they are (`inv_enroll_`, `inv_api_`), so a leaked one is recognisable in a log or a scan. */
export const newToken = (prefix: string): string => `${prefix}${randomBytes(24).toString('base64url')}`;
export const newId = (prefix: string): string =>
  `${prefix}${randomBytes(9)
    .toString('base64url')
    .replace(/[^A-Za-z0-9]/g, 'x')}`;
/** Tokens are kept only as hashes: a copy of the database lets no one in. */
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
