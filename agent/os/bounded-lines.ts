/**
 * The lines of `text` up to `maxLines`, with any line longer than `maxChars`
 * skipped unread (never copied). What a program prints about sessions or
 * users is read through this, so a flood of lines or one endless line costs
 * a bounded amount of work and memory, whatever printed it.
 */
export function* boundedLines(text: string, maxLines: number, maxChars: number): Generator<string> {
  let start = 0;
  for (let n = 0; n < maxLines && start <= text.length; n++) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl;
    if (end - start <= maxChars) yield text.slice(start, end);
    if (nl < 0) return;
    start = nl + 1;
  }
}
