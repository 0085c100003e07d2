'use strict';
/**
 * Outbox append with durable group commit: many producers, each `append`
 * resolving only once its record is synced. Goal ≥ 50,000 events/s.
 */
const { join } = require('node:path');
const { DIST, writeResult, tempDir } = require('./lib');
const { Outbox, DEFAULT_OUTBOX_OPTIONS } = require(join(DIST, 'agent/outbox/outbox.js'));

async function main() {
  const { outbox } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: tempDir('outbox') });
  const producers = 256;
  const total = 200_000;
  // About 300 bytes on disk, like a USB event.
  const draft = () => ({
    type: 'usb.connected',
    severity: 'info',
    time: new Date().toISOString(),
    user: { name: 'amy.p', role: 'pupil' },
    data: {
      device: {
        vendorId: '0781',
        productId: '5567',
        serial: '4C530001230712115462',
        manufacturer: 'SanDisk',
        product: 'Cruzer Blade',
        deviceClass: 0,
        interfaceClasses: [8],
      },
    },
  });
  let issued = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (issued < total) {
        issued++;
        await outbox.append(draft());
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await outbox.close();
  writeResult('outbox', {
    eventsPerSecond: Math.round(total / seconds),
    events: total,
    producers,
    seconds: Number(seconds.toFixed(2)),
    goalEventsPerSecond: 50_000,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
