/**
 * A standalone region agent: `node --import tsx region-agent/main.ts`, configured by GEO_SFU_*
 * (see region-agent/run.ts).
 */
import { runAgent } from './run.ts';

runAgent();
