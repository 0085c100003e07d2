import { hostname } from 'node:os';
import type { Platform } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { AgentConfig } from '../config';
import type { CollectorPort } from '../core/capability';
import type { CapabilitySet } from '../core/capability-set';
import { commandInbox } from '../core/command-inbox';
import type { Recorder } from '../core/events';
import { policyPush } from '../core/policy-push';
import { IdentityFile } from '../identity';
import type { Outbox } from '../outbox/outbox';
import type { PolicyKeeper } from '../policy-keeper';
import { DEFAULT_LINK_TUNING, Link } from './link';

export interface CollectorLinkDeps {
  config: Pick<AgentConfig, 'collector' | 'dataDir'>;
  linkTuning?: Partial<typeof DEFAULT_LINK_TUNING>;
  onEnrolled?: (deviceId: string) => void;
  platform: Platform;
  version: string;
  outbox: Outbox;
  policy: PolicyKeeper;
  record: Recorder;
  logger: Logger;
  /** What the collector sends goes to the capabilities, looked up by kind and type. */
  capabilities: CapabilitySet;
  /** The link came up or went down: the tray's status says so. */
  changed: () => void;
}

/** The link to the collector, with what it delivers wired to the policy keeper and the capabilities; not started. */
export function collectorLink(deps: CollectorLinkDeps): Link {
  const { collector } = deps.config;
  const { policy, record, logger, capabilities: caps } = deps;
  const link: Link = new Link({
    ...DEFAULT_LINK_TUNING,
    ...deps.linkTuning,
    url: collector.url,
    allowInsecure: collector.allowInsecure,
    ...(collector.caFile ? { caFile: collector.caFile } : {}),
    ...(collector.enrollmentToken ? { enrollmentToken: collector.enrollmentToken } : {}),
    identity: new IdentityFile(deps.config.dataDir),
    ...(deps.onEnrolled ? { onEnrolled: deps.onEnrolled } : {}),
    outbox: deps.outbox,
    logger,
    agentVersion: deps.version,
    hostname: hostname(),
    platform: deps.platform,
    policyRevision: () => policy.current.revision,
    policyId: () => policy.current.id,
    onPolicy: policyPush({ replace: (p) => policy.replace(p), record, changed: () => caps.onPolicyChanged(), logger }),
    onCommand: commandInbox({ carryOut: (c) => caps.carryOut(c), sendResult: (id, ok, e) => link.sendCommandResult(id, ok, e), record, logger }),
    onPermissionDecision: (decision) => caps.fromCollector(decision),
    onLoginVerdict: (verdict) => caps.fromCollector(verdict),
    onReady: () => (caps.linkReady(), deps.changed()),
    onDown: () => deps.changed(),
  });
  return link;
}

/** The link as a capability may use it: send, and ask whether it is connected. */
export function collectorPort(link: Link): CollectorPort {
  return {
    get ready() {
      return link.currentState === 'ready';
    },
    sendPermissionRequest: (r) => link.sendPermissionRequest(r),
    sendLogin: (m) => link.sendLogin(m),
  };
}
