#!/usr/bin/env node
// The `geo-sfu` bin: registers tsx's ESM loader in this process, then runs the TypeScript entry,
// so `npx geo-sfu ...` works from a clone without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
