/**
 * The notice window: something was stopped (a memory stick, a device, a
 * program), a virus warning, a decision on a request, or plain information.
 * Shows what and why, and offers the next step the agent allows: ask for
 * permission, type an offline code, or OK.
 */
import type { NoticeKind, NoticePayload } from '../api.js';
import { api, byId, el, show, start } from '../common/dom.js';
import { answerButton, header, subject, why } from '../common/parts.js';
import { IDENTIFIER } from '../common/validate.js';
import { parseNotice } from '../common/validate.js';

const KINDS: readonly NoticeKind[] = ['usb-blocked', 'device-blocked', 'software-blocked', 'information', 'permission-decision', 'virus-warning'];

const askPanel = byId<HTMLFormElement>('ask-panel');
const askReason = byId<HTMLTextAreaElement>('ask-reason');
const askError = byId('ask-error');
const codePanel = byId<HTMLFormElement>('code-panel');
const codeInput = byId<HTMLInputElement>('code-input');
const codeError = byId('code-error');
const result = byId('result');

let current: NoticePayload | undefined;

function toggle(button: HTMLButtonElement, panel: HTMLElement, focus: HTMLElement, other: [HTMLButtonElement | undefined, HTMLElement]): void {
  const open = panel.hidden;
  show(panel, open);
  button.setAttribute('aria-expanded', String(open));
  if (open) {
    show(other[1], false);
    other[0]?.setAttribute('aria-expanded', 'false');
    focus.focus();
  }
}

function invalid(input: HTMLElement, error: HTMLElement, bad: boolean): void {
  show(error, bad);
  if (bad) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else input.removeAttribute('aria-invalid');
}

askPanel.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!current) return;
  const reason = askReason.value.trim().slice(0, 1000);
  invalid(askReason, askError, reason === '');
  if (reason === '') return;
  api().answer(current.noticeId, 'ask-permission', reason);
  show(askPanel, false);
  byId('action-ask-permission').remove();
  result.textContent = 'Sent. A grown-up will read it and decide. You will see a message when they do.';
});

codePanel.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!current) return;
  const code = codeInput.value.replace(/\s+/g, '');
  const bad = code === '' || code.length > 128 || !IDENTIFIER.test(code);
  invalid(codeInput, codeError, bad);
  if (bad) return;
  api().answer(current.noticeId, 'enter-code', undefined, code);
  show(codePanel, false);
  result.textContent = 'Checking the code…';
});

function render(notice: NoticePayload): void {
  current = notice;
  header(byId('header'), notice);
  byId('details').replaceChildren(...subject(notice.subject), ...why(notice.clause));
  for (const [panel, input, error] of [
    [askPanel, askReason, askError],
    [codePanel, codeInput, codeError],
  ] as const) {
    show(panel, false);
    input.value = '';
    invalid(input, error, false);
  }
  result.textContent = '';

  const buttons: HTMLButtonElement[] = [];
  let ask: HTMLButtonElement | undefined;
  let code: HTMLButtonElement | undefined;
  if (notice.actions.includes('ask-permission')) {
    ask = el(
      'button',
      { type: 'button', class: 'secondary', id: 'action-ask-permission', 'aria-expanded': 'false', 'aria-controls': 'ask-panel' },
      'Ask for permission',
    );
    buttons.push(ask);
  }
  if (notice.actions.includes('enter-code')) {
    code = el(
      'button',
      { type: 'button', class: 'secondary', id: 'action-enter-code', 'aria-expanded': 'false', 'aria-controls': 'code-panel' },
      'I have a code',
    );
    buttons.push(code);
  }
  const askButton = ask;
  const codeButton = code;
  askButton?.addEventListener('click', () => toggle(askButton, askPanel, askReason, [codeButton, codePanel]));
  codeButton?.addEventListener('click', () => toggle(codeButton, codePanel, codeInput, [askButton, askPanel]));
  if (notice.actions.includes('dismiss')) buttons.unshift(answerButton(notice, 'dismiss', 'OK', true));
  else {
    // No answer needed: OK just closes the window.
    const ok = el('button', { type: 'button', class: 'primary', id: 'action-close' }, 'OK');
    ok.addEventListener('click', () => api().close());
    buttons.unshift(ok);
  }
  byId('buttons').replaceChildren(...buttons);
}

start((payload) => parseNotice(payload, KINDS), render);
