/**
 * A standalone region agent: `node --import tsx region-agent/main.ts` in development,
 * `node dist/region-agent/main.js` once built (`npm run build`), configured by GEO_SFU_*
 * (see region-agent/run.ts).
 */
import { runAgent } from './run.ts';

runAgent();
