import { stat } from 'node:fs/promises';
import type { PowerShellSession } from '../../../os/win32/powershell-session';
import { psQuote } from '../../../os/win32/ps-text';

/**
 * The Authenticode publisher of a Windows executable, for the policy's
 * `signer` matches (Carrington approves `OneDrive.exe` signed by
 * "Microsoft Corporation"). The publisher is the organisation (O=) of the
 * signing certificate's subject, as AppLocker's publisher rules take it,
 * and only for a signature Windows calls Valid: an unsigned, tampered or
 * expired-and-untimestamped file has no signer.
 */
export function signerScript(path: string): string {
  return `# invigilator:signer
$s = Get-AuthenticodeSignature -LiteralPath ${psQuote(path)} -ErrorAction SilentlyContinue
if ($s -and $s.Status -eq 'Valid' -and $s.SignerCertificate) { $s.SignerCertificate.Subject }`;
}

/**
 * The publisher from a certificate subject such as `CN=Microsoft
 * Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US`: the
 * O= value, else the CN= value. Quoted values (`O="Example, Inc."`) keep
 * their commas.
 */
export function publisherOf(subject: string): string | undefined {
  const fields = new Map<string, string>();
  const re = /(?:^|,)\s*([A-Za-z.0-9]+)=("(?:[^"]|"")*"|[^,]*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(subject)) !== null) {
    const key = m[1]!.toUpperCase();
    let value = m[2]!.trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/""/g, '"');
    if (!fields.has(key) && value !== '') fields.set(key, value);
  }
  const publisher = fields.get('O') ?? fields.get('CN');
  return publisher && publisher.length <= 256 ? publisher : undefined;
}

/**
 * `signerOf` for the guard on Windows, through the agent's long-lived
 * PowerShell session. Remembered under (path, size, mtime, file id) as
 * hashes are, so a signed program swapped for another under the same name
 * in a folder the user can write (OneDrive lives in AppData) is asked about
 * afresh.
 */
export function win32SignerOf(
  session: PowerShellSession,
  statFile: (path: string) => Promise<string | undefined> = fileIdentity,
): (path: string) => Promise<string | undefined> {
  const cache = new Map<string, string | undefined>();
  return async (path) => {
    if (path.length > 1024 || /[\r\n\0]/.test(path)) return undefined;
    const id = await statFile(path);
    if (id === undefined) return undefined;
    const key = `${path}\0${id}`;
    if (cache.has(key)) return cache.get(key);
    const subject = await session.run(signerScript(path), 30_000).catch(() => undefined);
    const signer = subject ? publisherOf(subject.trim()) : undefined;
    // The file must not have changed while it was being checked.
    if ((await statFile(path)) !== id) return undefined;
    if (cache.size >= 4096) cache.clear();
    cache.set(key, signer);
    return signer;
  };
}

async function fileIdentity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.size}:${s.mtimeMs}:${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}
