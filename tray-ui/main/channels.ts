/**
 * The only IPC channels between the main process and the tray's windows. The
 * preload keeps its own copy of this list (a sandboxed preload is one file and
 * cannot import this one); a test checks the two are equal.
 */
export const CHANNELS = {
  /** main -> window: what the window shows (a notice, the status, the report form). */
  show: 'invigilator:show',
  /** window -> main: the person's answer to a notice. */
  answer: 'invigilator:answer',
  /** window -> main: a problem report. */
  report: 'invigilator:report',
  /** window -> main: close this window. */
  close: 'invigilator:close',
  /** window -> main: open the school's ICT policy (the address comes from the agent, never from the window). */
  openPolicy: 'invigilator:open-policy',
} as const;

export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

/** Channels a window may send on; the main process listens on these and nothing else. */
export const FROM_WINDOW_CHANNELS = [CHANNELS.answer, CHANNELS.report, CHANNELS.close, CHANNELS.openPolicy] as const;
/** Channels the main process sends on. */
export const TO_WINDOW_CHANNELS = [CHANNELS.show] as const;
