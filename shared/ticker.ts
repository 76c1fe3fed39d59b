/**
 * Runs an async task every `intervalMs`, measured from the start of one run to the start of the
 * next, never two runs at once: a run slower than the interval delays the next instead of piling
 * up behind it (a heartbeat stuck on a slow router must not queue more heartbeats).
 */
export class Ticker {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = true;
  /** runNow() was called during a run: start the next one as soon as this one ends. */
  #runAgain = false;
  /** Callers of runNow() waiting for the run they asked for. */
  #waiters: Array<() => void> = [];

  constructor(
    private readonly intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
    /** Unreferenced timers (setTimeout's `unref`): a started ticker alone does not keep the process alive. */
    private readonly options: { unref?: boolean } = {},
  ) {}

  get started(): boolean {
    return !this.#stopped;
  }

  /** Starts ticking with a run right away; no-op when already started. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /**
   * Runs the task now (or right after the current run), then keeps the interval from there.
   * Resolves when that run has finished, or at once when stopped.
   */
  runNow(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const ran = new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (this.#running) this.#runAgain = true;
    else this.#schedule(0);
    return ran;
  }

  /** Stops ticking; resolves once a run in progress has finished. A run asked for but not started is dropped. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#runAgain = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    for (const resolve of this.#waiters.splice(0)) resolve();
    await this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), delayMs);
    if (this.options.unref) this.#timer.unref();
  }

  #run(): void {
    this.#timer = null;
    if (this.#stopped || this.#running) return;
    const startedAt = performance.now();
    const waiters = this.#waiters.splice(0);
    this.#running = this.task()
      .catch(this.onError)
      .finally(() => {
        this.#running = null;
        for (const resolve of waiters) resolve();
        if (this.#stopped) return;
        const again = this.#runAgain;
        this.#runAgain = false;
        this.#schedule(again ? 0 : Math.max(0, this.intervalMs - (performance.now() - startedAt)));
      });
  }
}
