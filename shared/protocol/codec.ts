import { DEFAULT_JSON_LIMITS } from '../untrusted-json';
import { agentToCollector } from './agent-collector';
import { decodeWith } from './agent-codec';
import { agentToTray } from './agent-tray';

export { decodeCollectorToAgent, decodeTrayToAgent, encode } from './agent-codec';

export const decodeAgentToCollector = (input: string | Uint8Array, limits = DEFAULT_JSON_LIMITS) => decodeWith(agentToCollector, input, limits);
export const decodeAgentToTray = (input: string | Uint8Array, limits = DEFAULT_JSON_LIMITS) => decodeWith(agentToTray, input, limits);
