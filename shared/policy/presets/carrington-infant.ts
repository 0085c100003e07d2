import type { Policy } from '../schema';

const DOCUMENT = 'Carrington Infant School ICT Policy';

/**
 * Carrington Infant School. All USB mass storage is blocked ("blocked, logged
 * and reviewed"), personal cloud-storage clients are prohibited (OneDrive for
 * Business and SharePoint Online excepted), only school-approved programmes
 * run, and pupils download no software. The document sets no device limit per
 * login, so there is none. Times and idle limits are our defaults for an
 * infant school, for the network manager to tune.
 */
export const carringtonInfant: Policy = {
  v: 1,
  id: 'carrington-infant',
  name: 'Carrington Infant: ICT Policy',
  school: 'Carrington Infant School',
  revision: 1,
  description:
    "Derived from the Carrington Infant School ICT Policy: 1. Network Security Policy, Unacceptable Use of ICT, and 4. Pupils' Internet Code of Practice.",
  clauses: {
    'cis-usb-mass-storage': {
      document: DOCUMENT,
      section: '1. Network Security Policy: Access to school ICT facilities and materials',
      quote:
        'The use of USB Mass storage devices such as USB sticks or external hard drives is prohibited at Carrington Infant School. Any attempt to use these devices will be blocked, logged and reviewed.',
    },
    'cis-cloud-storage': {
      document: DOCUMENT,
      section: '1. Network Security Policy: Access to school ICT facilities and materials',
      quote:
        'The use of External Cloud storage or sharing services is prohibited with the exception of authorised School platforms. ... Or any other site or service which is not explicitly allowed. Explicitly allowed services: - OneDrive for Business - SharePoint Online',
    },
    'cis-personal-devices': {
      document: DOCUMENT,
      section: '1. Network Security Policy: Access to school ICT facilities and materials',
      quote: 'All access to School systems and data must only be completed via School owned equipment. The use of personal devices is Prohibited.',
    },
    'cis-approved-programmes': {
      document: DOCUMENT,
      section: '1. Network Security Policy: ICT system integrity and security',
      quote:
        'Changes to system or network configuration files and settings are strictly forbidden. Only programmes provided or approved by the school are to be used.',
    },
    'cis-interfering-software': {
      document: DOCUMENT,
      section: 'Unacceptable Use of ICT',
      quote:
        "Setting up any software, applications or web services on the school's network without approval by authorised personnel, or creating or using any program, tool or item of software designed to interfere with the functioning of the ICT facilities, accounts or data",
    },
    'cis-pupil-downloads': {
      document: DOCUMENT,
      section: "4. Pupils' Internet Code of Practice",
      quote: 'I may not download software from the Internet (including screen savers, games, video clips, audio clips, *.exe files).',
    },
    'cis-log-off': {
      document: DOCUMENT,
      section: "4. Pupils' Internet Code of Practice",
      quote: 'I will not tell my user name and password to anyone; even my best friend and I will log off my username when I have finished using the computer.',
    },
    'cis-monitoring': {
      document: DOCUMENT,
      section: 'Monitoring of school network and use of ICT facilities',
      quote: 'The school reserves the right to monitor the use of its ICT facilities and network.',
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
    default: 'pupil',
  },
  notices: { contact: 'the school business manager', throttleSeconds: 60 },
  usbStorage: {
    // No exceptions by role: the policy prohibits USB mass storage for everyone.
    default: { mode: 'block-all', unknownEncryption: 'block', readOnlyInsteadOfBlock: false, allowRequests: false, clause: 'cis-usb-mass-storage' },
  },
  usbDevices: {
    default: {
      allowedClasses: ['hub', 'hid', 'audio', 'video', 'wireless', 'smart-card', 'billboard'],
      otherClasses: 'log',
      badUsbGuard: true,
      allowRequests: true,
      clause: 'cis-personal-devices',
    },
  },
  usbAllowlist: [],
  hardwareEncryptedModels: [],
  loginLimit: {
    default: { maxDevices: null, offline: 'allow-and-reconcile', leaseSeconds: 300, graceSeconds: 120, clause: 'cis-log-off' },
  },
  logoff: {
    default: {
      idle: { afterMinutes: 10, warningSeconds: 60, stillHereAccepted: true },
      endOfDay: { time: '15:30', days: ['mon', 'tue', 'wed', 'thu', 'fri'], warningMinutes: 5 },
      onTrayMissing: 'report',
      trayGraceSeconds: 120,
      clause: 'cis-log-off',
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
      mode: 'allowlist',
      categories: {
        'personal-cloud-storage': { action: 'terminate', clause: 'cis-cloud-storage' },
        'hacking-tool': { action: 'terminate', clause: 'cis-interfering-software' },
        'evidence-elimination': { action: 'terminate', clause: 'cis-interfering-software' },
        'filter-bypass': { action: 'terminate', clause: 'cis-interfering-software' },
      },
      rules: [],
      approved: [
        { name: 'OneDrive.exe', signer: 'Microsoft Corporation' },
        { name: 'Microsoft.SharePoint.exe', signer: 'Microsoft Corporation' },
      ],
      downloads: { action: 'report', clause: 'cis-approved-programmes' },
      installs: { action: 'terminate', clause: 'cis-interfering-software' },
      privateMounts: { action: 'report', clause: 'cis-interfering-software' },
      clause: 'cis-approved-programmes',
    },
    roles: {
      pupil: {
        downloads: { action: 'quarantine', clause: 'cis-pupil-downloads' },
        privateMounts: { action: 'terminate', clause: 'cis-interfering-software' },
      },
    },
  },
  aup: {
    required: true,
    onDecline: 'report',
    summary:
      'Only use programs the school gives you. USB memory sticks and hard drives are not allowed. Do not use cloud storage apart from the school OneDrive. Log off when you finish. The school checks how its computers are used.',
    clause: 'cis-monitoring',
  },
  failsafe: { unreadableVolume: 'block', virusWarningNotice: true },
  retention: { eventDays: 365 },
};
