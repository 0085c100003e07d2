/**
 * The login-limit notice: you are signed in on too many computers. Lists the
 * other sessions (which computer, since when) and lets the user sign out here
 * or sign out one of the others (answer sign-out-other with its sessionId).
 */
import type { NoticePayload } from '../api.js';
import { api, byId, el, start } from '../common/dom.js';
import { when } from '../common/format.js';
import { answerButton, header, why } from '../common/parts.js';
import { parseNotice } from '../common/validate.js';

function render(notice: NoticePayload): void {
  header(byId('header'), notice);
  const canSignOutOther = notice.actions.includes('sign-out-other');
  const rows = (notice.sessions ?? []).map((session, i) => {
    const row = el('li');
    const where = el('span', { class: 'where', id: `session-${i}` });
    where.append(el('strong', {}, session.hostname), el('span', {}, `, since ${when(session.since)}`));
    row.append(where);
    if (canSignOutOther) {
      const button = el('button', { type: 'button', class: 'secondary', id: `sign-out-${i}`, 'aria-describedby': `session-${i}` }, 'Sign out that one');
      button.addEventListener('click', () => {
        api().answer(notice.noticeId, 'sign-out-other', undefined, session.sessionId);
        api().close();
      });
      row.append(button);
    }
    return row;
  });
  byId('sessions').replaceChildren(...(rows.length > 0 ? rows : [el('li', {}, 'No other computers.')]));
  byId('details').replaceChildren(...why(notice.clause));
  const buttons: HTMLButtonElement[] = [];
  if (notice.actions.includes('sign-out-here')) buttons.push(answerButton(notice, 'sign-out-here', 'Sign out here', false));
  if (notice.actions.includes('dismiss')) buttons.push(answerButton(notice, 'dismiss', 'OK', false));
  buttons.forEach((b) => b.setAttribute('class', b.id === 'action-sign-out-here' ? 'danger' : 'secondary'));
  byId('buttons').replaceChildren(...buttons);
}

start((payload) => parseNotice(payload, ['login-limit']), render);
