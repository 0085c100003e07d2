/** Pieces every notice window shares: the heading with its picture, the device or program, and "Why?". */
import type { ClausePayload, NoticeAction, NoticePayload } from '../api.js';
import { api, el } from './dom.js';
import { icon } from './icons.js';

/** Fills the window's header: picture, title (the window's one h1) and body. */
export function header(into: HTMLElement, notice: NoticePayload): void {
  const title = el('h1', { id: 'title' }, notice.title);
  const body = el('p', { class: 'body' }, notice.body);
  into.replaceChildren(icon(notice.kind), el('div', { class: 'words' }));
  into.lastElementChild?.append(title, body);
  document.title = notice.title;
}

/** "Which one": the device or program the notice is about, always as text. */
export function subject(text: string | undefined): HTMLElement[] {
  if (text === undefined || text === '') return [];
  const box = el('p', { class: 'subject' });
  box.append(el('span', { class: 'label' }, 'Which one: '), el('span', { id: 'subject', class: 'value' }, text));
  return [box];
}

/** The school's own words behind the notice, for adults: a native disclosure, so it works with keyboard and screen readers. */
export function why(clause: ClausePayload | undefined): HTMLElement[] {
  if (!clause) return [];
  const details = el('details', { class: 'why', id: 'why' });
  const summary = el('summary', {}, 'Why?');
  const from = el('p', { class: 'source' });
  from.append(
    el('span', {}, 'From the school’s rules: '),
    el('strong', { id: 'clause-document' }, clause.document),
    el('span', {}, ', section '),
    el('strong', { id: 'clause-section' }, clause.section),
  );
  const quote = el('blockquote', { id: 'clause-quote' }, clause.quote);
  details.append(summary, from, quote);
  return [details];
}

/** A button that sends `action` for `notice`, then closes the window when the answer ends the notice. */
export function answerButton(notice: NoticePayload, action: NoticeAction, label: string, primary: boolean): HTMLButtonElement {
  const button = el('button', { type: 'button', class: primary ? 'primary' : 'secondary', id: `action-${action}` }, label);
  button.addEventListener('click', () => {
    api().answer(notice.noticeId, action);
    if (ENDS_NOTICE.has(action)) api().close();
  });
  return button;
}

/** Answers after which the window has nothing more to do. */
export const ENDS_NOTICE: ReadonlySet<NoticeAction> = new Set(['dismiss', 'agree', 'decline', 'sign-out-here', 'sign-out-other']);
