/**
 * Report a problem: something is broken, I think there is a virus, or
 * something upsetting is on the screen, with the child's own words. Send
 * calls report(kind, text); the agent adds the system details.
 */
import type { ReportKind } from '../api.js';
import { api, byId, el, show } from '../common/dom.js';
import { icon } from '../common/icons.js';

const KINDS: { kind: ReportKind; label: string }[] = [
  { kind: 'broken', label: 'Something is broken' },
  { kind: 'virus', label: 'I think there is a virus' },
  { kind: 'upsetting', label: 'Something upsetting is on the screen' },
];

const THANKS: Record<ReportKind, string> = {
  broken: 'Thank you. A grown-up will come and fix it.',
  virus: 'Thank you for telling us. Stop using this computer and tell a teacher now.',
  upsetting: 'Thank you for telling us. You did the right thing. Tell a teacher or a grown-up you trust now.',
};

const form = byId<HTMLFormElement>('report-form');
const kinds = byId<HTMLFieldSetElement>('kinds');
const text = byId<HTMLTextAreaElement>('report-text');
const kindError = byId('kind-error');
const result = byId('result');

for (const { kind, label } of KINDS) {
  const input = el('input', { type: 'radio', name: 'kind', value: kind, id: `kind-${kind}` });
  const row = el('label', { for: `kind-${kind}` });
  row.append(input, icon(kind, 36), el('span', {}, label));
  kinds.append(row);
}

function chosen(): ReportKind | undefined {
  const input = kinds.querySelector<HTMLInputElement>('input[name="kind"]:checked');
  return KINDS.find((k) => k.kind === input?.value)?.kind;
}

function reset(): void {
  form.reset();
  show(form, true);
  show(kindError, false);
  kinds.removeAttribute('aria-invalid');
  result.textContent = '';
}

kinds.addEventListener('change', () => show(kindError, false));

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const kind = chosen();
  if (!kind) {
    show(kindError, true);
    kinds.querySelector<HTMLInputElement>('input')?.focus();
    return;
  }
  api().report(kind, text.value.trim().slice(0, 4000));
  show(form, false);
  result.textContent = THANKS[kind];
  const close = el('button', { type: 'button', class: 'primary', id: 'done' }, 'Close');
  close.addEventListener('click', () => api().close());
  byId('content').append(close);
  close.focus();
});

byId('close').addEventListener('click', () => api().close());

// The window opens empty; each show (the menu item pressed again) starts afresh.
api().onShow(() => {
  document.getElementById('done')?.remove();
  reset();
});
