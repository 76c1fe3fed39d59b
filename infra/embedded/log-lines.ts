/**
 * The embedded default's output: each child's lines (pino JSON, or plain text such as a stack
 * trace) tagged with the child's name. On a terminal they are made readable (time, level, name,
 * message, then the other fields); otherwise each stays one JSON object per line, with the
 * child's name added as `proc`, for log collectors.
 */

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** ANSI colours by level, on a terminal only. */
const COLOURS: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };
const RESET = '\x1b[0m';
/** pino's own fields, shown in the line's head or not at all. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

type LogRecord = Record<string, unknown> & { level?: unknown; time?: unknown; msg?: unknown };

function parse(line: string): LogRecord | null {
  if (!line.startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as LogRecord) : null;
  } catch {
    return null;
  }
}

/** One JSON object per line, with the child's name (`proc`) first. */
export function jsonLine(name: string, line: string): string {
  const record = parse(line);
  return JSON.stringify(record ? { proc: name, ...record } : { proc: name, msg: line });
}

/** `12:01:02.345 WARN  router: message key=value …`. */
export function prettyLine(name: string, line: string, colour: boolean): string {
  const record = parse(line);
  if (!record) return `${name}: ${line}`;
  const level = typeof record.level === 'number' ? record.level : 30;
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const label = (LEVELS[level] ?? String(level)).padEnd(5);
  const fields = Object.entries(record)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const head = colour && COLOURS[level] ? `${COLOURS[level]}${label}${RESET}` : label;
  return [time, head, `${name}:`, String(record.msg ?? ''), ...fields].filter((part) => part !== '').join(' ');
}
