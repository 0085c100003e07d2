import { crc32 } from 'node:zlib';

/**
 * One outbox record on disk: payload length (u32 LE), CRC-32 of the payload
 * (u32 LE), then the payload (UTF-8 JSON). A record is either whole and
 * checksummed or it is not a record: that is what makes recovery exact.
 */
export const RECORD_HEADER_BYTES = 8;
export const SEGMENT_MAGIC = Buffer.from('INVOBX1\n', 'latin1');

export function encodeRecord(payload: Buffer): Buffer {
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  record.writeUInt32LE(crc32(payload), 4);
  payload.copy(record, RECORD_HEADER_BYTES);
  return record;
}

export type ScanStep =
  { kind: 'record'; offset: number; length: number; payload: Buffer } | { kind: 'corrupt'; offset: number; skipped: number } | { kind: 'torn'; offset: number };

/**
 * Walks the records of one segment's bytes. A record whose bytes run past the
 * end is a torn tail (a crash mid-write). A record whose checksum fails is
 * corrupt: we look for the next offset where a whole, valid record starts and
 * report how much was skipped.
 */
export function* scanSegment(bytes: Buffer, start: number, maxRecordBytes: number): Generator<ScanStep> {
  let offset = start;
  while (offset < bytes.length) {
    const valid = recordAt(bytes, offset, maxRecordBytes);
    if (valid === 'torn') {
      yield { kind: 'torn', offset };
      return;
    }
    if (valid) {
      yield { kind: 'record', offset, length: valid.length, payload: valid.payload };
      offset += RECORD_HEADER_BYTES + valid.length;
      continue;
    }
    const next = resync(bytes, offset + 1, maxRecordBytes);
    if (next === undefined) {
      // Nothing valid follows: treat the rest as a torn tail rather than guess.
      yield { kind: 'torn', offset };
      return;
    }
    yield { kind: 'corrupt', offset, skipped: next - offset };
    offset = next;
  }
}

function recordAt(bytes: Buffer, offset: number, maxRecordBytes: number): { length: number; payload: Buffer } | 'torn' | undefined {
  if (offset + RECORD_HEADER_BYTES > bytes.length) return 'torn';
  const length = bytes.readUInt32LE(offset);
  if (length === 0 || length > maxRecordBytes) return undefined;
  if (offset + RECORD_HEADER_BYTES + length > bytes.length) return 'torn';
  const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
  return crc32(payload) === bytes.readUInt32LE(offset + 4) ? { length, payload } : undefined;
}

/** The next offset at which a whole record with a valid checksum begins, if any. */
function resync(bytes: Buffer, from: number, maxRecordBytes: number): number | undefined {
  for (let offset = from; offset + RECORD_HEADER_BYTES < bytes.length; offset++) {
    // Every payload is a JSON object: a cheap filter before the checksum.
    if (bytes[offset + RECORD_HEADER_BYTES] !== 0x7b) continue;
    const found = recordAt(bytes, offset, maxRecordBytes);
    if (found && found !== 'torn') return offset;
  }
  return undefined;
}
