/**
 * The only way the windows make DOM. Text is only ever set with `textContent`
 * and attributes only with `setAttribute` on a fixed list of names, so a device
 * name such as `<img src=x onerror=alert(1)>` stays a string of characters.
 */
import type { TrayWindowApi } from '../api.js';

type Attrs = Partial<Record<AllowedAttr, string>>;
const ALLOWED_ATTRS = [
  'id',
  'class',
  'type',
  'name',
  'value',
  'for',
  'role',
  'hidden',
  'maxlength',
  'rows',
  'autocomplete',
  'inputmode',
  'spellcheck',
  'aria-label',
  'aria-labelledby',
  'aria-describedby',
  'aria-live',
  'aria-hidden',
  'aria-expanded',
  'aria-controls',
  'aria-invalid',
  'tabindex',
] as const;
type AllowedAttr = (typeof ALLOWED_ATTRS)[number];
const allowed = new Set<string>(ALLOWED_ATTRS);

/** An element with the given attributes and, optionally, text. Never parses markup. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (!allowed.has(key)) throw new Error(`attribute ${key} is not allowed`);
    if (value !== undefined) node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

/** An element that must be in the window's HTML. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node as T;
}

export function setText(node: Element, text: string): void {
  node.textContent = text;
}

export function show(node: HTMLElement, visible: boolean): void {
  node.hidden = !visible;
}

declare global {
  interface Window {
    invigilator?: TrayWindowApi;
  }
}

/** The preload's API. Without it (a page opened outside the tray) every call does nothing. */
export function api(): TrayWindowApi {
  const found = window.invigilator;
  if (found) return found;
  const nothing = (): void => undefined;
  return { onShow: nothing, answer: nothing, report: nothing, close: nothing, openPolicy: nothing };
}

/**
 * Wires a window: each payload from the preload is checked by `parse`; a good
 * one is drawn by `render`, a bad one puts up the "cannot show this" panel.
 */
export function start<T>(parse: (payload: unknown) => T | undefined, render: (value: T) => void): void {
  api().onShow((payload) => {
    const value = parse(payload);
    if (value === undefined) {
      showBroken();
      return;
    }
    byId('broken').hidden = true;
    byId('content').hidden = false;
    render(value);
  });
}

function showBroken(): void {
  byId('content').hidden = true;
  const broken = byId('broken');
  broken.hidden = false;
  broken.replaceChildren(
    el('h1', {}, 'Something went wrong'),
    el('p', {}, 'This message could not be shown. You can close it. If it keeps happening, tell a teacher.'),
  );
  const close = el('button', { type: 'button', class: 'primary' }, 'Close');
  close.addEventListener('click', () => api().close());
  broken.append(close);
}
