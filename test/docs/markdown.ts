/**
 * Just enough Markdown for the doc tests: headings outside fenced code, the
 * fenced blocks under each heading, and table rows. Not a general parser: it
 * reads docs/*.md as Prettier leaves them.
 */
export interface Section {
  /** `##` is 2, `####` is 4. */
  level: number;
  title: string;
  /** The section's own text, up to the next heading of any level. */
  body: string;
  /** Fenced blocks in the body: their info string (`json`) and text. */
  blocks: { lang: string; text: string }[];
  /** The titles of the enclosing headings, outermost first. */
  parents: string[];
}

export function sections(markdown: string): Section[] {
  const out: Section[] = [];
  const stack: { level: number; title: string }[] = [];
  let current: Section | undefined;
  let fence: { marker: string; lang: string; lines: string[] } | undefined;
  for (const line of markdown.split('\n')) {
    if (fence) {
      if (line.trimStart().startsWith(fence.marker) && line.trim() === fence.marker) {
        current?.blocks.push({ lang: fence.lang, text: fence.lines.join('\n') });
        fence = undefined;
      } else fence.lines.push(line);
      if (current) current.body += `${line}\n`;
      continue;
    }
    const opening = /^\s*(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (opening) fence = { marker: opening[1]!, lang: opening[2] ?? '', lines: [] };
    const heading = opening ? null : /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = heading[1]!.length;
      while (stack.length > 0 && stack[stack.length - 1]!.level >= level) stack.pop();
      current = { level, title: heading[2]!.trim(), body: '', blocks: [], parents: stack.map((s) => s.title) };
      stack.push({ level, title: current.title });
      out.push(current);
    } else if (current) current.body += `${line}\n`;
  }
  if (fence) throw new Error(`an unclosed ${fence.marker} fence`);
  return out;
}

/** The cells of each table row in a text (the header and the `---` row included). */
export function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => /^\|.*\|\s*$/.test(l))
    .map((l) =>
      l
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

/** The code spans of a piece of Markdown text, in order. */
export function codeSpans(text: string): string[] {
  const out: string[] = [];
  const re = /(`+)(.+?)\1(?!`)/gs;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[2]!.replace(/^ (.*) $/s, '$1'));
  return out;
}
