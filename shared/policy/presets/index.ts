import type { Policy } from '../schema';
import { basildonPrimary } from './basildon-primary';
import { carringtonInfant } from './carrington-infant';

export const PRESETS: Readonly<Record<string, Policy>> = Object.freeze({
  [basildonPrimary.id]: basildonPrimary,
  [carringtonInfant.id]: carringtonInfant,
});

export const PRESET_NAMES = Object.keys(PRESETS);

/** A deep copy, so that callers can never change the preset itself. */
export function preset(name: string): Policy | undefined {
  return Object.prototype.hasOwnProperty.call(PRESETS, name) ? structuredClone(PRESETS[name]) : undefined;
}
