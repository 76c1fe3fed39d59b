import Table from 'cli-table3';

/** Plain tables (no colours, so piped output stays clean). */
export function table(head: string[], rows: Array<Array<string | number>>, align?: Array<'left' | 'right'>): string {
  const t = new Table({
    head,
    style: { head: [], border: [], compact: true },
    ...(align ? { colAligns: align.map((a) => (a === 'right' ? 'right' : 'left')) } : {}),
  });
  for (const row of rows) t.push(row.map(String));
  return t.toString();
}

export const DASH = '—';

export const ms = (x: number | null | undefined): string => (x === null || x === undefined ? DASH : x.toFixed(1));
export const pct = (x: number | null | undefined): string => (x === null || x === undefined ? DASH : `${Math.round(x * 1000) / 10}%`);

/** 900 → "900 kbit/s", 90000 → "90 Mbit/s", 73500000 → "73.5 Gbit/s". */
export function rate(kbps: number): string {
  if (kbps >= 1e6) return `${trim(kbps / 1e6)} Gbit/s`;
  if (kbps >= 1e3) return `${trim(kbps / 1e3)} Mbit/s`;
  return `${trim(kbps)} kbit/s`;
}

export const usd = (x: number): string => `$${x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

const trim = (x: number) => String(Math.round(x * 100) / 100);
