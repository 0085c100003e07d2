import { createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { InvigilatorError } from '../shared/errors';

const CERT = '--tls-cert (INVIGILATOR_TLS_CERT)';
const KEY = '--tls-key (INVIGILATOR_TLS_KEY)';

/**
 * Reads the collector's certificate and key and checks, before any server is
 * built, that they are PEM and belong together, so that a wrong file is a
 * sentence naming it rather than an OpenSSL stack trace.
 */
export function readTlsFiles(files: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const cert = read(files.certFile, CERT);
  const key = read(files.keyFile, KEY);
  try {
    createSecureContext({ cert });
  } catch (e) {
    throw new InvigilatorError(
      'INV_ERR_TLS_INVALID',
      `${files.certFile} is not a PEM certificate (a file that begins "-----BEGIN CERTIFICATE-----"; ${openssl(e)}): give one with ${CERT} ` +
        `(a DER file converts with openssl x509 -inform DER -in FILE -out cert.pem).`,
    );
  }
  try {
    createPrivateKey(key);
  } catch (e) {
    throw new InvigilatorError(
      'INV_ERR_TLS_INVALID',
      `${files.keyFile} is not a PEM private key (a file that begins "-----BEGIN PRIVATE KEY-----" or similar, without a passphrase; ${openssl(e)}): give one with ${KEY}.`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new InvigilatorError(
      'INV_ERR_TLS_INVALID',
      `${files.keyFile} is not the private key of the certificate ${files.certFile} (${openssl(e)}): give the key made with that certificate with ${KEY}.`,
    );
  }
  return { cert, key };
}

function read(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InvigilatorError('INV_ERR_FILE_UNREADABLE', `${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; give a readable file with ${setting}.`);
  }
}

/** OpenSSL's reason, without its numeric prefix: `PEM routines::no start line` → `no start line`. */
function openssl(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/^error:[0-9A-F]+:/, '').replace(/^.*::/, '');
}
