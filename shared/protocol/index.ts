export * from './primitives';
export * from './events';
export * from './agent-collector';
export * from './agent-tray';
export * from './codec';
