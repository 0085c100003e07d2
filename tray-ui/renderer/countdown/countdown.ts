/**
 * The logoff countdown: this computer will sign you out at `deadline` because
 * nobody has used it. Ticks every second; "I'm still here" when the agent
 * offers it (whether it is accepted is the agent's call: it sends a new
 * deadline, or takes the notice down).
 */
import type { NoticePayload } from '../api.js';
import { byId, start } from '../common/dom.js';
import { duration, minutesSeconds } from '../common/format.js';
import { answerButton, header, why } from '../common/parts.js';
import { parseNotice } from '../common/validate.js';

const timer = byId('timer');
const announce = byId('announce');
const result = byId('result');
let ticking: ReturnType<typeof setInterval> | undefined;
let lastAnnounced = '';

/** What a screen reader hears: at the start, each whole minute, 30 and 10 seconds, and the end. Not every second. */
function spoken(seconds: number, first: boolean): string | undefined {
  if (seconds <= 0) return 'Signing you out now.';
  if (first || seconds % 60 === 0 || seconds === 30 || seconds === 10) return `This computer will sign you out in ${duration(seconds)}.`;
  return undefined;
}

function tick(deadline: number, first: boolean): void {
  const seconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
  timer.textContent = minutesSeconds(seconds);
  const words = spoken(seconds, first);
  if (words !== undefined && words !== lastAnnounced) {
    announce.textContent = words;
    lastAnnounced = words;
  }
  if (seconds <= 0) {
    if (ticking !== undefined) clearInterval(ticking);
    ticking = undefined;
    document.getElementById('action-still-here')?.remove();
  }
}

function render(notice: NoticePayload): void {
  if (ticking !== undefined) clearInterval(ticking);
  lastAnnounced = '';
  result.textContent = '';
  header(byId('header'), notice);
  byId('details').replaceChildren(...why(notice.clause));
  const buttons: HTMLButtonElement[] = [];
  if (notice.actions.includes('still-here')) {
    const here = answerButton(notice, 'still-here', 'I’m still here', true);
    here.addEventListener('click', () => {
      result.textContent = 'Thank you. Telling the computer you are still here…';
    });
    buttons.push(here);
  }
  if (notice.actions.includes('dismiss')) buttons.push(answerButton(notice, 'dismiss', 'OK', buttons.length === 0));
  byId('buttons').replaceChildren(...buttons);
  const deadline = Date.parse(notice.deadline ?? '');
  tick(deadline, true);
  if (Date.now() < deadline) ticking = setInterval(() => tick(deadline, false), 1000);
}

start((payload) => {
  const notice = parseNotice(payload, ['logoff-countdown']);
  return notice?.deadline === undefined ? undefined : notice;
}, render);
