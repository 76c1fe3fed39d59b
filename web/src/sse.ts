/** Server-sent events over a fetch body (EventSource cannot send an Authorization header). */

export interface SseMessage {
  event: string;
  data: string;
}

/** Incremental text/event-stream parser: feed it decoded chunks, get the complete messages. */
export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];

  push(chunk: string): SseMessage[] {
    this.#buffer += chunk;
    const out: SseMessage[] = [];
    let newline: number;
    while ((newline = this.#buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.#buffer.slice(0, newline);
      const width = this.#buffer.startsWith('\r\n', newline) ? 2 : 1;
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (width === 1 && this.#buffer[newline] === '\r' && newline === this.#buffer.length - 1) break;
      this.#buffer = this.#buffer.slice(newline + width);
      if (line === '') {
        if (this.#data.length > 0) out.push({ event: this.#event || 'message', data: this.#data.join('\n') });
        this.#event = '';
        this.#data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') this.#event = value;
      else if (field === 'data') this.#data.push(value);
    }
    return out;
  }
}

export type StreamStatus = { kind: 'connecting' } | { kind: 'live' } | { kind: 'retrying'; reason: string } | { kind: 'unauthorized' };

export interface StreamOptions {
  url: string;
  token: string | null;
  onMessage: (message: SseMessage) => void;
  onStatus: (status: StreamStatus) => void;
  /** Reconnect when nothing arrived for this long (the server sends every second). */
  staleAfterMs?: number;
  retryMs?: number;
}

/** Reads the stream, reconnecting on errors and silence; stops on 401. Returns a stop function. */
export function openStream(opts: StreamOptions): () => void {
  const staleAfterMs = opts.staleAfterMs ?? 5_000;
  const retryMs = opts.retryMs ?? 2_000;
  let stopped = false;
  let controller: AbortController | null = null;

  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      const abort = controller;
      let watchdog = setTimeout(() => abort.abort(), staleAfterMs);
      const alive = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), staleAfterMs);
      };
      let reason = 'connection closed';
      try {
        opts.onStatus({ kind: 'connecting' });
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (opts.token) headers.authorization = `Bearer ${opts.token}`;
        const res = await fetch(opts.url, { headers, signal: abort.signal, cache: 'no-store' });
        if (res.status === 401) {
          clearTimeout(watchdog);
          opts.onStatus({ kind: 'unauthorized' });
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        opts.onStatus({ kind: 'live' });
        const parser = new SseParser();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          alive();
          for (const message of parser.push(value)) opts.onMessage(message);
        }
      } catch (err) {
        reason = abort.signal.aborted ? 'no data from the router' : (err as Error).message;
      } finally {
        clearTimeout(watchdog);
      }
      if (stopped) return;
      opts.onStatus({ kind: 'retrying', reason });
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
