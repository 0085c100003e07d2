import type { Policy } from '../schema';

const DOCUMENT = 'Basildon C.E. Primary School ICT Acceptable Use Policy, version 1.3 (May 2018)';
const CODE = '3.7 Code of practice';

/**
 * Basildon C.E. Primary School. Encrypted sticks are allowed, anything else
 * plugged in needs the School Network Manager's permission, one login may be
 * signed in on at most two school devices, users log off at the end of a
 * session, and no software is installed and no hacking tools are used.
 * Times and idle limits are not in the document: they are our defaults for a
 * primary school, for the network manager to tune.
 */
export const basildonPrimary: Policy = {
  v: 1,
  id: 'basildon-primary',
  name: 'Basildon Primary: ICT Acceptable Use',
  school: 'Basildon C.E. Primary School',
  revision: 1,
  description: 'Derived from the Basildon C.E. Primary School ICT Acceptable Use Policy, section 3.7 (code of practice), 4.8 and 5.6.',
  clauses: {
    'bps-connections-encrypted': {
      document: DOCUMENT,
      section: `${CODE}: Connections to the computer`,
      quote: 'Encrypted USB memory sticks, or other portable storage media may be used where a port is provided at the front or side of a device.',
    },
    'bps-connections-permission': {
      document: DOCUMENT,
      section: `${CODE}: Connections to the computer`,
      quote: 'Users are not permitted to connect anything else to the computer without first obtaining permission from the School Network Manager.',
    },
    'bps-two-devices': {
      document: DOCUMENT,
      section: `${CODE}: User ID and password and logging on`,
      quote: 'Users must not log on to more than two school devices with the same user credentials.',
    },
    'bps-logging-off': {
      document: DOCUMENT,
      section: `${CODE}: Logging off`,
      quote:
        'Users must log off from the computer they are using at the end of each of session and wait for the standard login screen to reappear before leaving.',
    },
    'bps-installation': {
      document: DOCUMENT,
      section: `${CODE}: Installation of software, files or media`,
      quote:
        'Users must not install or attempt to install software of any kind to network drives or local hard drives of networked desktop computers, without first obtaining permission from the School Network Manager.',
    },
    'bps-hacking-tools': {
      document: DOCUMENT,
      section: `${CODE}: Access to information not normally available`,
      quote:
        "Users must not attempt to install software to explore or harm the system. Use of hacking tools, e.g. 'loggers', 'sniffers' or 'evidence elimination software', is expressly forbidden.",
    },
    'bps-bypass-controls': {
      document: DOCUMENT,
      section: '4.8 Code of practice: Misuse, abuse and access restrictions',
      quote: 'Users must not misuse or abuse any website or service or attempt to bypass any access controls or restrictions on any website or service.',
    },
    'bps-program-files': {
      document: DOCUMENT,
      section: '5.6 Code of practice: Program files and non-business documents',
      quote: "Users must not introduce program files or non-business documents from external sources on to the school's network.",
    },
    'bps-malware': {
      document: DOCUMENT,
      section: `${CODE}: Malware or Viruses`,
      quote:
        'If a user suspects that the computer/device has a virus, or a user warning regarding malware or breach of security is displayed, the user ... Place a warning notice on the screen ... Report the concern immediately to the School Network Manager',
    },
    'bps-monitoring': {
      document: DOCUMENT,
      section: `${CODE}: User ID and password and logging on`,
      quote:
        "The acceptable use of any device remains the responsibility of the user logged on. Use of the school's systems are monitored and recorded remotely under the ICT support contract.",
    },
  },
  roles: {
    definitions: [
      { id: 'staff', label: 'Staff', groups: ['staff', 'teachers', 'Domain Admins'] },
      { id: 'governor', label: 'Governor', groups: ['governors'] },
      { id: 'volunteer', label: 'Volunteer', groups: ['volunteers'] },
      { id: 'contractor', label: 'Contractor', groups: ['contractors'] },
      { id: 'visitor', label: 'Visitor', groups: ['visitors', 'guests'] },
      { id: 'pupil', label: 'Pupil', groups: ['pupils', 'students'] },
    ],
    // Someone in none of the groups gets the most restricted role.
    default: 'pupil',
  },
  notices: { contact: 'the School Network Manager', throttleSeconds: 60 },
  usbStorage: {
    default: { mode: 'allow-encrypted', unknownEncryption: 'block', readOnlyInsteadOfBlock: false, allowRequests: true, clause: 'bps-connections-encrypted' },
  },
  usbDevices: {
    default: {
      // "the keyboard, mouse and any headphones/speakers provided", plus the
      // cameras and Bluetooth that laptops carry inside on their USB bus.
      allowedClasses: ['hub', 'hid', 'audio', 'video', 'wireless', 'smart-card', 'billboard'],
      otherClasses: 'block',
      badUsbGuard: true,
      allowRequests: true,
      clause: 'bps-connections-permission',
    },
    roles: { staff: { otherClasses: 'log' } },
  },
  usbAllowlist: [],
  hardwareEncryptedModels: [],
  loginLimit: {
    default: { maxDevices: 2, offline: 'allow-and-reconcile', leaseSeconds: 300, graceSeconds: 120, clause: 'bps-two-devices' },
  },
  logoff: {
    default: {
      idle: { afterMinutes: 15, warningSeconds: 60, stillHereAccepted: true },
      endOfDay: { time: '16:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], warningMinutes: 5 },
      onTrayMissing: 'report',
      trayGraceSeconds: 120,
      clause: 'bps-logging-off',
    },
    roles: {
      staff: {
        idle: { afterMinutes: 30, warningSeconds: 120, stillHereAccepted: true },
        endOfDay: { time: '19:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], warningMinutes: 10 },
      },
    },
  },
  software: {
    default: {
      mode: 'denylist',
      categories: {
        'hacking-tool': { action: 'terminate', clause: 'bps-hacking-tools' },
        'evidence-elimination': { action: 'terminate', clause: 'bps-hacking-tools' },
        'filter-bypass': { action: 'terminate', clause: 'bps-bypass-controls' },
      },
      rules: [],
      approved: [],
      downloads: { action: 'report', clause: 'bps-program-files' },
      installs: { action: 'notify', clause: 'bps-installation' },
      privateMounts: { action: 'report', clause: 'bps-bypass-controls' },
      clause: 'bps-installation',
    },
    roles: {
      pupil: {
        downloads: { action: 'quarantine', clause: 'bps-program-files' },
        installs: { action: 'terminate', clause: 'bps-installation' },
        privateMounts: { action: 'terminate', clause: 'bps-bypass-controls' },
      },
    },
  },
  aup: {
    required: true,
    onDecline: 'logoff',
    summary:
      'Use school computers kindly and safely. Only use encrypted memory sticks. Do not install programs or use hacking tools. Sign in on no more than two school computers at once, and log off when you finish. What you do on school computers is recorded.',
    clause: 'bps-monitoring',
  },
  failsafe: { unreadableVolume: 'block', virusWarningNotice: true, clause: 'bps-malware' },
  retention: { eventDays: 365 },
};
