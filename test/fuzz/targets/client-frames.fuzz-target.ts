import { AddressInfo } from 'node:net';
import {
  MessagePickupRepositoryClient,
  MessagesReceivedParams,
  PickupConnectionLostError,
  PickupRpcError,
  PickupTimeoutError,
} from '@didcomm-mpr/client';
import { WebSocketServer } from 'ws';
import { FuzzFinding, FuzzTarget } from '../support/fuzz-target';

const CALL_TIMEOUT_MS = 2_000;
type Obj = Record<string, unknown>;
const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);
const show = (value: unknown) => JSON.stringify(value)?.slice(0, 300);

/** What a `messagesReceived` listener may rely on: the protocol's params. */
function checkNotification(params: MessagesReceivedParams): void {
  const value = params as unknown;
  if (!isObject(value) || typeof value.connectionId !== 'string' || !Array.isArray(value.messages)) {
    throw new FuzzFinding(`a messagesReceived listener got params that are not {connectionId, messages}: ${show(value)}`);
  }
  for (const message of value.messages) {
    if (
      !isObject(message) ||
      typeof message.id !== 'string' ||
      typeof message.receivedAt !== 'string' ||
      !('encryptedMessage' in message)
    ) {
      throw new FuzzFinding(`a messagesReceived listener got a message that is not {id, receivedAt, encryptedMessage}: ${show(message)}`);
    }
  }
}

/**
 * The client library's handling of server frames (libs/client: the reconnecting socket and the client over it), over
 * a real WebSocket on loopback in this process: each input is one frame the server sends just before it answers the
 * client's pending call (a literal "$ID" in it becomes that call's id, so inputs can answer the call themselves).
 * Checked: the call settles in time, with a result or one of the client's documented errors (a JSON-RPC error with a
 * numeric code and a message); `messagesReceived` listeners get only the protocol's params; nothing escapes as an
 * exception or an unhandled rejection; the client keeps working.
 */
export const target: FuzzTarget = {
  name: 'client-frames',
  description: 'client: a server frame answering a pending call (MessagePickupRepositoryClient over a loopback WebSocket)',
  dictionary: [
    'jsonrpc',
    '2.0',
    'id',
    '"$ID"',
    'result',
    'error',
    'code',
    'message',
    'data',
    'retryable',
    'method',
    'params',
    'messagesReceived',
    'connectionId',
    'messages',
    'receivedAt',
    'encryptedMessage',
    '-32000',
    '-32002',
    '-32602',
  ],
  async setup() {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    let pendingFrame: string | undefined;
    server.on('connection', (socket) => {
      socket.on('message', (data) => {
        const request = JSON.parse(data.toString()) as { id: number };
        if (pendingFrame !== undefined) {
          socket.send(pendingFrame.split('"$ID"').join(String(request.id)));
          pendingFrame = undefined;
        }
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ jsonrpc: '2.0', id: request.id, result: 0 }));
      });
    });
    let listenerFailure: unknown;
    const client = new MessagePickupRepositoryClient({
      url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
      requestTimeoutMs: CALL_TIMEOUT_MS,
      connectTimeoutMs: 1_000,
      reconnectBaseDelayMs: 1,
      reconnectMaxDelayMs: 5,
      heartbeatIntervalMs: 60_000,
      // The client reports what it refused here too (a malformed notification); only a listener's failure is a finding.
      onError: (error) => {
        if (error instanceof FuzzFinding) listenerFailure ??= error;
      },
    });
    client.onMessagesReceived((params) => checkNotification(params));
    await client.connect();
    return {
      async run(input: Buffer) {
        pendingFrame = input.toString('utf8');
        listenerFailure = undefined;
        const outcome = await client.getAvailableMessageCount({ connectionId: 'fuzz' }).then(
          (result) => ({ result, error: undefined }),
          (error: unknown) => ({ result: undefined, error }),
        );
        pendingFrame = undefined;
        if (listenerFailure !== undefined) throw listenerFailure;
        const { error } = outcome;
        if (error === undefined) return;
        if (error instanceof PickupRpcError) {
          if (!Number.isInteger(error.code) || typeof error.rpcMessage !== 'string')
            throw new FuzzFinding(
              `a JSON-RPC error without a numeric code and a message: ${show({ code: error.code, message: error.rpcMessage })}`,
            );
          return;
        }
        if (error instanceof PickupTimeoutError || error instanceof PickupConnectionLostError) return;
        throw new FuzzFinding(`the call failed with an undocumented error: ${(error as Error)?.stack ?? String(error)}`);
      },
      async close() {
        await client.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  },
};
