/**
 * The status window: is this computer protected, which of the school's rules
 * it follows (name and version), since when it has been connected, and the
 * last thing that happened. A button opens the school's policy.
 */
import type { StatusPayload, StatusState } from '../api.js';
import { api, byId, el, show, start } from '../common/dom.js';
import { when } from '../common/format.js';
import { icon } from '../common/icons.js';
import { parseStatus } from '../common/validate.js';

const WORDS: Record<StatusState, { title: string; body: string }> = {
  protected: { title: 'This computer is protected', body: 'Everything is working. The school’s rules are switched on.' },
  attention: { title: 'This computer needs a grown-up to look at it', body: 'Something is not quite right. Tell a teacher or the network manager.' },
  disconnected: {
    title: 'This computer is not connected to the school',
    body: 'The school’s rules still work, but the computer cannot tell the school what happens until it connects again.',
  },
};

byId('close').addEventListener('click', () => api().close());
byId('open-policy').addEventListener('click', () => api().openPolicy());

function fact(term: string, value: string, id: string): HTMLElement[] {
  return [el('dt', {}, term), el('dd', { id }, value)];
}

function render(status: StatusPayload): void {
  const words = WORDS[status.state];
  const text = el('div', { class: 'words' });
  text.append(el('h1', { id: 'title' }, words.title), el('p', { class: 'body' }, words.body));
  byId('header').replaceChildren(icon(status.state), text);
  document.title = words.title;
  byId('facts').replaceChildren(
    ...fact('School rules', status.policyName === '' ? 'Not known yet' : `${status.policyName} (version ${status.policyRevision})`, 'policy'),
    ...fact('Connected', status.connectedSince === null ? 'Not connected now' : `Since ${when(status.connectedSince)}`, 'connected'),
    ...fact('Last thing', status.lastEvent === null ? 'Nothing yet' : `${status.lastEvent.type}, ${when(status.lastEvent.time)}`, 'last-event'),
  );
  show(byId('open-policy'), status.policyUrl !== undefined);
}

start(parseStatus, render);
