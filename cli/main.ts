/**
 * geo-sfu CLI entry: `node --import tsx cli/main.ts <command> ...` (or the `geo-sfu` bin, cli/bin.js),
 * `node dist/cli/main.js <command> ...` once built (`npm run build`).
 * Exit codes: 0 ok, 1 runtime/network error, 2 bad arguments (see `geo-sfu --help`).
 */
import { main } from './program.ts';

process.exitCode = await main(process.argv);
