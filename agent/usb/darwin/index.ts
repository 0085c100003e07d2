/** What the composition root needs to run the macOS adapter for real. */
export { createDarwinUsbPlatform, type DarwinUsbPlatform, type DarwinUsbPlatformOptions } from './darwin-usb-platform';
export { createExecFileRunner, type CommandRunner, type CommandResult } from '../command-runner';
