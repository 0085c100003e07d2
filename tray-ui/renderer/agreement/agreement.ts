/**
 * The acceptable-use agreement, at first login and on each new policy
 * version: the school's rules in plain words, then I agree / I do not agree.
 * The agent records the answer; declining may sign the user out.
 */
import type { NoticePayload } from '../api.js';
import { byId, start } from '../common/dom.js';
import { answerButton, header, why } from '../common/parts.js';
import { parseNotice } from '../common/validate.js';

function render(notice: NoticePayload): void {
  header(byId('header'), notice);
  // The body is the agreement itself: shown in the scrolling box, not under the title.
  byId('header').querySelector('.body')?.remove();
  byId('agreement-text').textContent = notice.body;
  byId('details').replaceChildren(...why(notice.clause));
  const buttons: HTMLButtonElement[] = [];
  if (notice.actions.includes('agree')) buttons.push(answerButton(notice, 'agree', 'I agree', true));
  if (notice.actions.includes('decline')) buttons.push(answerButton(notice, 'decline', 'I do not agree', false));
  byId('buttons').replaceChildren(...buttons);
}

start((payload) => parseNotice(payload, ['aup-agreement']), render);
