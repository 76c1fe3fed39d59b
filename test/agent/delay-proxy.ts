import net from 'node:net';

/**
 * A TCP proxy that holds every chunk for `oneWayDelayMs` in each direction, so a request/response
 * through it takes 2 × oneWayDelayMs more than direct: a long-distance link on loopback.
 */
export interface DelayProxy {
  url: string;
  close(): Promise<void>;
}

export async function startDelayProxy(target: { host: string; port: number }, oneWayDelayMs: number): Promise<DelayProxy> {
  const sockets = new Set<net.Socket>();
  const forward = (from: net.Socket, to: net.Socket) => {
    // Equal delays fire in arrival order, so the byte stream stays in order.
    from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), oneWayDelayMs));
    from.on('end', () => setTimeout(() => to.end(), oneWayDelayMs));
    from.on('close', () => setTimeout(() => to.destroy(), oneWayDelayMs));
    from.on('error', () => to.destroy());
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
