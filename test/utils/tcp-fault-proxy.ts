import net from 'node:net';

/**
 * A loopback TCP proxy that injects faults between a client and a shared server (Redis,
 * PostgreSQL) without ever touching the server: `cut()` drops every connection and refuses new
 * ones (accepted, then closed at once), `delay(ms)` holds each chunk for `ms` in both directions
 * (order kept), `restore()` forwards normally again.
 */
export class TcpFaultProxy {
  private readonly server = net.createServer((client) => this.accept(client));
  private readonly sockets = new Set<net.Socket>();
  private isCut = false;
  private delayMs = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpFaultProxy> {
    const proxy = new TcpFaultProxy(targetHost, targetPort);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  cut(): void {
    this.isCut = true;
    for (const socket of this.sockets) socket.destroy();
  }

  delay(ms: number): void {
    this.delayMs = ms;
  }

  restore(): void {
    this.isCut = false;
    this.delayMs = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    for (const [socket, peer] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(socket);
      this.forward(socket, peer);
      socket.on('error', () => peer.destroy());
      socket.on('close', () => {
        this.sockets.delete(socket);
        peer.destroy();
      });
    }
  }

  /** Forwards chunks in arrival order, each no earlier than `delayMs` after it arrived. */
  private forward(from: net.Socket, to: net.Socket): void {
    const queue: Array<{ chunk: Buffer; sendAt: number }> = [];
    let pumping = false;
    const pump = (): void => {
      while (queue[0] && queue[0].sendAt <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      pumping = queue.length > 0;
      if (queue[0]) setTimeout(pump, queue[0].sendAt - Date.now());
    };
    from.on('data', (chunk: Buffer) => {
      queue.push({ chunk, sendAt: Date.now() + this.delayMs });
      if (!pumping) pump();
    });
  }
}
