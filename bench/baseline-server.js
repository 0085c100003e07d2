'use strict';
/**
 * The bare baseline the ingest benchmark compares against: ws, JSON.parse, one
 * prepared INSERT OR IGNORE per event, one SQLite transaction per flush, WAL
 * with synchronous=FULL. No validation, no authentication.
 *
 * usage: node baseline-server.js DB_FILE PORT
 */
const Database = require('better-sqlite3');
const { WebSocketServer } = require('ws');

const [file, port] = process.argv.slice(2);
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS events (device_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (device_id, seq))');
const insert = db.prepare('INSERT OR IGNORE INTO events (device_id, seq, body) VALUES (?, ?, ?)');
let pending = [];
const flush = db.transaction((items) => {
  for (const { events } of items) for (const e of events) insert.run(e.deviceId, e.seq, JSON.stringify(e));
});
const wss = new WebSocketServer({ port: Number(port), host: '127.0.0.1', maxPayload: 1024 * 1024, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if (m.type !== 'event.batch') return;
    if (pending.length === 0) setImmediate(run);
    pending.push({ ws, events: m.events });
  });
});
function run() {
  const items = pending;
  pending = [];
  flush(items);
  for (const { ws, events } of items) ws.send(JSON.stringify({ v: 1, type: 'ack', upToSeq: events[events.length - 1].seq }));
}
wss.on('listening', () => process.stdout.write('listening on\n'));
