import net from 'node:net';

/**
 * A loopback TCP proxy that delays every byte by a fixed time in each direction: the userspace
 * stand-in for a WAN link (no netem here). A request/response over it takes 2 × oneWayDelayMs
 * more than direct. Used by the embedded launcher's WAN emulation and by tests; never by the
 * production request path.
 */
export interface DelayProxy {
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface DelayProxyOptions {
  targetHost: string;
  targetPort: number;
  oneWayDelayMs: number;
  listenHost?: string;
  listenPort?: number;
}

export async function startDelayProxy(opts: DelayProxyOptions): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(opts.targetPort, opts.targetHost);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    pipeDelayed(client, upstream, opts.oneWayDelayMs);
    pipeDelayed(upstream, client, opts.oneWayDelayMs);
  });
  const host = opts.listenHost ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort ?? 0, host, resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Forwards `from` → `to` with a constant delay. Timers of equal duration fire in creation order
 * in Node, so bytes keep their order without a queue of our own.
 */
function pipeDelayed(from: net.Socket, to: net.Socket, delayMs: number): void {
  from.on('data', (chunk) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, delayMs);
  });
  from.on('end', () => setTimeout(() => to.end(), delayMs));
}
