import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The proof an agent gives for a challenge: HMAC-SHA256 over a fixed label,
 * the device id and the nonce. Binding the device id means a proof for one
 * device can never be presented for another; a fresh nonce per connection
 * means a recorded proof is useless later.
 */
export function proofFor(secret: Buffer, nonce: string, deviceId: string): string {
  return createHmac('sha256', secret).update(`invigilator-auth-v1\n${deviceId}\n${nonce}`).digest('base64url');
}

export function proofMatches(secret: Buffer, nonce: string, deviceId: string, proof: string): boolean {
  const expected = Buffer.from(proofFor(secret, nonce, deviceId));
  const given = Buffer.from(proof);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
