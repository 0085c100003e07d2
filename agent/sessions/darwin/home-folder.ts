import { type HomeLookup, safeName } from '../home-folders';

/** `/Users/<name>`. */
export const usersHomes: HomeLookup = async (session) => (safeName(session.user) ? { uid: session.uid, home: `/Users/${session.user}` } : undefined);
