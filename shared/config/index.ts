export * from './spec.ts';
export * from './load.ts';
