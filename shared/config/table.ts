import { CONFIG_SPEC, type Spec } from './spec.ts';

/** The configuration table of docs/configuration.md, generated from the spec (`npx tsx shared/config/table.ts`). */
export function configTableMarkdown(): string {
  const rows = Object.values(CONFIG_SPEC as Record<string, Spec>).map((s) => `| \`${s.env}\` | ${s.component} | ${formatDefault(s)} | ${s.doc.replace(/\|/g, '\\|')} |`);
  return ['| Variable | Used by | Default | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

export function formatDefault(s: Spec): string {
  if (s.kind === 'string' && s.default === '') return '(empty)';
  const range = s.kind === 'int' || s.kind === 'number' ? ` (${s.min}–${s.max})` : s.kind === 'enum' ? ` (${s.values.join(' \\| ')})` : '';
  return `\`${String(s.default)}\`${range}`;
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${configTableMarkdown()}\n`);
