import { expect, it } from 'vitest';
import { SseParser } from '../../web/src/sse.ts';

it('parses server-sent events split anywhere across chunks', () => {
  const stream = 'retry: 2000\n\n: comment\nevent: snapshot\ndata: {"a":1}\n\nevent: failure\r\ndata: line 1\r\ndata:line 2\r\n\r\ndata: plain\n\n';
  for (const size of [1, 2, 3, 7, stream.length]) {
    const parser = new SseParser();
    const out = [];
    for (let i = 0; i < stream.length; i += size) out.push(...parser.push(stream.slice(i, i + size)));
    expect(out, `chunks of ${size}`).toEqual([
      { event: 'snapshot', data: '{"a":1}' },
      { event: 'failure', data: 'line 1\nline 2' },
      { event: 'message', data: 'plain' },
    ]);
  }
});

it('keeps an incomplete event until its blank line arrives', () => {
  const parser = new SseParser();
  expect(parser.push('event: snapshot\ndata: {"partial"')).toEqual([]);
  expect(parser.push(':true}\n')).toEqual([]);
  expect(parser.push('\n')).toEqual([{ event: 'snapshot', data: '{"partial":true}' }]);
});
