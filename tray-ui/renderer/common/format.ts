/** Times in words a child can read, in the computer's own time zone and language. */

const clock = (): Intl.DateTimeFormat => new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const day = (): Intl.DateTimeFormat => new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });

/** "9:15" today, "Monday 23 November at 9:15" another day. */
export function when(iso: string, now: number = Date.now()): string {
  const date = new Date(iso);
  const today = new Date(now);
  const sameDay = date.getFullYear() === today.getFullYear() && date.getMonth() === today.getMonth() && date.getDate() === today.getDate();
  return sameDay ? `today at ${clock().format(date)}` : `${day().format(date)} at ${clock().format(date)}`;
}

/** "2:05" for a timer. */
export function minutesSeconds(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** "2 minutes and 5 seconds", for screen readers and the words under the timer. */
export function duration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const m = Math.floor(s / 60);
  const rest = s % 60;
  const mins = m === 1 ? '1 minute' : `${m} minutes`;
  const secs = rest === 1 ? '1 second' : `${rest} seconds`;
  if (m === 0) return secs;
  return rest === 0 ? mins : `${mins} and ${secs}`;
}
