// Worker threads on Node 20 do not inherit tsx's loader from --import: register it, then run the TS.
import { register } from 'tsx/esm/api';

register();
await import('./load-worker.ts');
