import { InvigilatorError } from '../../shared/errors';
import { FileByteSource } from '../../agent/usb/file-byte-source';
import { classifyDevice } from '../../agent/usb/volume-classifier';
import { parse } from '../args';
import { EXIT, type Io } from '../output';

export const USB_HELP = `Usage: invigilator usb classify PATH

Prints whether the image file or block device at PATH is encrypted, decided
from its own bytes (at most 256 KiB read per volume), as JSON:
  { "encrypted": true|false|"unknown", "scheme": "...", "filesystem": "...", "partitions": [...] }
A partitioned stick counts as encrypted only if every data partition is.`;

export async function usbCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {});
  const [sub, path, ...rest] = positionals;
  if (values.help) {
    io.out(USB_HELP);
    return EXIT.OK;
  }
  if (sub !== 'classify' || path === undefined || rest.length > 0) {
    io.err(`INV_ERR_USAGE: expected \`usb classify PATH\`\n\n${USB_HELP}`);
    return EXIT.USAGE;
  }
  let source: FileByteSource;
  try {
    source = await FileByteSource.open(path);
  } catch (e) {
    io.err(`INV_ERR_FILE_UNREADABLE: ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    return EXIT.INVALID;
  }
  try {
    const result = await classifyDevice(source);
    io.out(
      JSON.stringify(
        {
          encrypted: result.encrypted,
          scheme: result.scheme,
          filesystem: result.filesystem ?? null,
          partitions: result.partitions,
          bytesRead: result.bytesRead,
        },
        null,
        2,
      ),
    );
    return EXIT.OK;
  } catch (e) {
    if (e instanceof InvigilatorError) {
      io.err(`${e.code}: ${path}: ${e.message}`);
      return EXIT.INVALID;
    }
    throw e;
  } finally {
    await source.close();
  }
}
