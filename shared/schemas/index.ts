export * from './common.ts';
export * from './reasons.ts';
export * from './allocate.ts';
export * from './registry.ts';
export * from './views.ts';
export * from './demo.ts';
export * from './dashboard.ts';
export * from './operations.ts';
