import { win32 } from 'node:path';
import { type HomeLookup, safeName } from '../home-folders';

/** `C:\\Users\\<name>`, the default profile folder; a moved profile is not found (the registry's ProfileList would say, and is not read yet). */
export const profileHomes: HomeLookup = async (session) =>
  safeName(session.user) ? { uid: session.uid, home: win32.join('C:\\Users', session.user) } : undefined;
