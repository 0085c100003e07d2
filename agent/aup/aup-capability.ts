import type { AgentContext, Capability } from '../core/capability';
import type { SessionDirectory } from '../core/sessions';
import type { SessionControl } from '../sessions/session-control';
import { AGREEMENT_NOTICE_PREFIX, AgreementKeeper } from './agreement-keeper';

/** What the agreement reads and acts through: the tick's shared read of the sessions, and sign-outs that are confirmed. */
export interface AupDeps {
  sessions: SessionDirectory;
  control: SessionControl;
}

/**
 * The acceptable-use agreement as a capability: put to each user whose tray
 * says hello, put again when the policy changes it, and answered from the
 * tray (declining signs the user out).
 */
export function aupCapability(ctx: AgentContext, deps: AupDeps): Capability & { readonly keeper: AgreementKeeper } {
  const keeper = new AgreementKeeper({
    dataDir: ctx.dataDir,
    policy: ctx.policy,
    notices: ctx.notices,
    record: ctx.record,
    sessions: deps.sessions,
    control: deps.control,
    logger: ctx.logger,
  });
  return {
    name: 'aup',
    keeper,
    notices: { prefixes: [AGREEMENT_NOTICE_PREFIX], answer: (a, from) => keeper.answer(a, from) },
    onPolicyChanged: () => keeper.onPolicyChanged(),
    onTrayHello: (from) => keeper.onHello(from),
    // Before any tray can say hello: the answers given are known.
    start: () => keeper.load(),
  };
}
