import { WebSocket } from 'ws';

/**
 * The outcome of one WebSocket upgrade to `url`: 'open' (then closed at once), or the HTTP status it was refused with.
 * `ca`: for `wss://`, the certificate(s) to trust.
 */
export function upgradeOutcome(url: string, headers: Record<string, string> = {}, ca?: string | string[]): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers, ...(ca !== undefined ? { ca } : {}) });
    socket.once('open', () => {
      socket.terminate();
      resolve('open');
    });
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? -1);
      socket.terminate();
    });
    socket.once('error', (error) => reject(error));
  });
}
