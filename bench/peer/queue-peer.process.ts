/**
 * The peer's process, started by bench/contenders/peer.contender.ts with an IPC channel: answers one request at a
 * time (peer-protocol.types.ts) with what QueuePeer (queue-peer.ts) measured in this process.
 */
import { PeerEnvelope, PeerReply } from './peer-protocol.types';
import { QueuePeer } from './queue-peer';

let peer: QueuePeer | undefined;
/** One request at a time, in order. */
let queue: Promise<void> = Promise.resolve();

function reply(message: PeerReply): void {
  process.send?.(message);
}

async function serve({ id, request }: PeerEnvelope): Promise<void> {
  try {
    if (request.op === 'init') {
      peer = await QueuePeer.start(request);
      reply({ id, ok: true, result: { pid: process.pid } });
    } else if (request.op === 'shutdown') {
      await peer?.shutdown();
      reply({ id, ok: true, result: null });
      process.disconnect?.();
    } else {
      if (!peer) throw new Error('not initialised');
      reply({ id, ok: true, result: await peer.handle(request) });
    }
  } catch (error) {
    reply({ id, ok: false, error: (error as Error).stack ?? String(error) });
  }
}

process.on('message', (envelope: PeerEnvelope) => {
  queue = queue.then(() => serve(envelope));
});
// The bench went away: nothing is left to answer.
process.on('disconnect', () => setTimeout(() => process.exit(0), 2_000).unref());
process.on('unhandledRejection', (reason) => {
  console.error(`unhandled rejection in the peer process: ${(reason as Error)?.stack ?? String(reason)}`);
});
