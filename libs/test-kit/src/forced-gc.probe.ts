import WebSocket from 'ws';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with `what timed out after N ms` unless `promise` settles first. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Forces a full garbage collection in a server process through the V8 inspector, so memory figures compare
 * retained memory rather than whatever garbage happened to be pending (the bench's memory figures, fault 5). The child is started with
 * `--inspect-port=127.0.0.1:<port>`, which only reserves the port; SIGUSR1 opens the inspector on first use.
 */
export class ForcedGc {
  private activated = false;

  constructor(
    private readonly pid: number,
    /** The child's --inspect-port (undefined: started without one, so no forced GC). */
    private readonly inspectorPort: number | undefined,
  ) {}

  /** Two full collections; rejects with the reason when the inspector cannot be reached or refuses. */
  async collect(): Promise<void> {
    const url = await this.debuggerUrl();
    await withTimeout(this.run(url), 15_000, 'HeapProfiler.collectGarbage');
  }

  private async debuggerUrl(): Promise<string> {
    if (this.inspectorPort === undefined) throw new Error('the server has no inspector port');
    if (!this.activated) {
      process.kill(this.pid, 'SIGUSR1');
      this.activated = true;
    }
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${this.inspectorPort}/json/list`, { signal: AbortSignal.timeout(1_000) });
        const targets = (await response.json()) as { webSocketDebuggerUrl?: string }[];
        const url = targets.find((target) => target.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
        if (url) return url;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('inspector did not open');
      await sleep(100);
    }
  }

  private run(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false });
      let id = 0;
      const next = () => socket.send(JSON.stringify({ id: ++id, method: 'HeapProfiler.collectGarbage' }));
      socket.on('open', next);
      socket.on('message', (data) => {
        const reply = JSON.parse(data.toString()) as { id?: number; error?: { message: string } };
        if (reply.id === undefined) return;
        if (reply.error) {
          socket.close();
          reject(new Error(reply.error.message));
        } else if (reply.id < 2) {
          next();
        } else {
          socket.close();
          resolve();
        }
      });
      socket.on('error', reject);
    });
  }
}
