/**
 * One picture for each kind of window, drawn from fixed shapes (never from a
 * payload). Pictures are decoration: aria-hidden, with the words beside them
 * saying the same thing.
 */
import type { NoticeKind, ReportKind, StatusState } from '../api.js';

export type IconName = NoticeKind | ReportKind | StatusState;

type Shape = [tag: 'path' | 'circle' | 'rect', attrs: Record<string, string>];
interface Icon {
  /** Background, chosen for at least 3:1 against white (WCAG 1.4.11). */
  bg: string;
  shapes: Shape[];
}

const W = { fill: 'none', stroke: '#ffffff', 'stroke-width': '3', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
const F = { fill: '#ffffff' };

const stick: Shape[] = [
  ['rect', { x: '17', y: '10', width: '14', height: '10', ...W }],
  ['rect', { x: '13', y: '20', width: '22', height: '20', rx: '3', ...W }],
];
const cross: Shape[] = [['path', { d: 'M30 29l10 10M40 29L30 39', ...W, stroke: '#ffffff' }]];
const bug: Shape[] = [
  ['circle', { cx: '24', cy: '27', r: '9', ...F }],
  ['circle', { cx: '24', cy: '15', r: '5', ...F }],
  ['path', { d: 'M12 20l6 4M36 20l-6 4M10 29h6M32 29h6M12 38l6-4M36 38l-6-4', ...W }],
];

const ICONS: Record<IconName, Icon> = {
  'usb-blocked': { bg: '#b3261e', shapes: [...stick.map(([t, a]): Shape => [t, { ...a, transform: 'translate(-4 0)' }]), ...cross] },
  'device-blocked': {
    bg: '#b3261e',
    shapes: [['path', { d: 'M14 10v8M24 10v8M10 18h18v6a9 9 0 0 1-18 0zM19 33v7', ...W, transform: 'translate(-2 0)' }], ...cross],
  },
  'software-blocked': {
    bg: '#b3261e',
    shapes: [['rect', { x: '8', y: '10', width: '28', height: '22', rx: '3', ...W }], ['path', { d: 'M8 17h28', ...W }], ...cross],
  },
  'virus-warning': { bg: '#b3261e', shapes: bug },
  information: {
    bg: '#0b5cad',
    shapes: [
      ['circle', { cx: '24', cy: '14', r: '3', ...F }],
      ['path', { d: 'M24 22v14', ...W, 'stroke-width': '5' }],
    ],
  },
  'permission-decision': {
    bg: '#0b5cad',
    shapes: [
      ['circle', { cx: '17', cy: '24', r: '7', ...W }],
      ['path', { d: 'M24 24h16M34 24v6M39 24v4', ...W }],
    ],
  },
  'logoff-countdown': {
    bg: '#0b5cad',
    shapes: [
      ['circle', { cx: '24', cy: '24', r: '14', ...W }],
      ['path', { d: 'M24 15v9l6 4', ...W }],
    ],
  },
  'login-limit': {
    bg: '#0b5cad',
    shapes: [
      ['rect', { x: '6', y: '12', width: '18', height: '14', rx: '2', ...W }],
      ['rect', { x: '24', y: '20', width: '18', height: '14', rx: '2', ...W }],
      ['path', { d: 'M11 32h8M29 40h8', ...W }],
    ],
  },
  'aup-agreement': {
    bg: '#0b5cad',
    shapes: [
      ['path', { d: 'M13 8h16l7 7v25H13z', ...W }],
      ['path', { d: 'M18 22h12M18 28h12M18 34h7', ...W }],
    ],
  },
  broken: {
    bg: '#8a4b00',
    shapes: [['path', { d: 'M30 10a8 8 0 0 0-7 11L11 33l4 4 12-12a8 8 0 0 0 11-7l-5 3-4-2-1-4z', ...W }]],
  },
  virus: { bg: '#b3261e', shapes: bug },
  upsetting: {
    bg: '#6b3fa0',
    shapes: [
      ['circle', { cx: '24', cy: '24', r: '15', ...W }],
      ['circle', { cx: '18', cy: '20', r: '2', ...F }],
      ['circle', { cx: '30', cy: '20', r: '2', ...F }],
      ['path', { d: 'M17 32a9 7 0 0 1 14 0', ...W }],
    ],
  },
  protected: {
    bg: '#1e7a34',
    shapes: [
      ['path', { d: 'M24 7l14 5v10c0 9-6 16-14 19-8-3-14-10-14-19V12z', ...W }],
      ['path', { d: 'M18 24l5 5 8-9', ...W }],
    ],
  },
  attention: {
    bg: '#8a4b00',
    shapes: [
      ['path', { d: 'M24 8l17 30H7z', ...W }],
      ['path', { d: 'M24 19v9', ...W }],
      ['circle', { cx: '24', cy: '33', r: '2', ...F }],
    ],
  },
  disconnected: {
    bg: '#5f6368',
    shapes: [
      ['path', { d: 'M8 20a22 22 0 0 1 32 0M14 27a13 13 0 0 1 20 0', ...W }],
      ['circle', { cx: '24', cy: '34', r: '3', ...F }],
      ['path', { d: 'M9 9l30 30', ...W }],
    ],
  },
};

const SVG = 'http://www.w3.org/2000/svg';

/** The picture for `name`, hidden from screen readers. */
export function icon(name: IconName, size = 48): SVGSVGElement {
  const spec = ICONS[name];
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 48 48');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  const bg = document.createElementNS(SVG, 'rect');
  for (const [k, v] of Object.entries({ width: '48', height: '48', rx: '12', fill: spec.bg })) bg.setAttribute(k, v);
  svg.append(bg);
  for (const [tag, attrs] of spec.shapes) {
    const shape = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, v);
    svg.append(shape);
  }
  return svg;
}
