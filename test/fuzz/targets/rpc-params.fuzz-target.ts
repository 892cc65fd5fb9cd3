import { RpcMethod } from '@didcomm-mpr/protocol';
import { FuzzFinding, FuzzTarget } from '../support/fuzz-target';
import { checkJsonRpcAnswer } from './json-rpc-answer.oracle';
import { RPC_DICTIONARY, RpcDispatcherHarness } from './rpc-dispatcher.harness';

const METHODS = Object.values(RpcMethod);
type Obj = Record<string, unknown>;
const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);
const isIsoDate = (value: unknown) => typeof value === 'string' && !Number.isNaN(Date.parse(value));

/** What a successful answer of each method must look like (the protocol's result types). */
function checkResult(method: string, params: unknown, result: unknown): void {
  const fail = (what: string) => {
    throw new FuzzFinding(`${method} answered ${JSON.stringify(result)?.slice(0, 300)}: ${what}`);
  };
  switch (method) {
    case RpcMethod.AddMessage: {
      if (!isObject(result) || typeof result.messageId !== 'string' || result.messageId === '') fail('expected {messageId}');
      const given = isObject(params) ? params.messageId : undefined;
      if (typeof given === 'string' && (result as Obj).messageId !== given) fail(`expected the given messageId ${given}`);
      return;
    }
    case RpcMethod.TakeFromQueue:
      if (!Array.isArray(result)) return fail('expected an array');
      for (const message of result) {
        if (!isObject(message) || typeof message.id !== 'string' || !isIsoDate(message.receivedAt) || !('encryptedMessage' in message))
          fail('expected {id, receivedAt, encryptedMessage} entries');
      }
      return;
    case RpcMethod.GetAvailableMessageCount:
      if (!Number.isInteger(result) || (result as number) < 0) fail('expected a count');
      return;
    case RpcMethod.GetQueueStats:
      if (!isObject(result) || ![result.pending, result.sending, result.bytes].every((n) => Number.isInteger(n) && (n as number) >= 0))
        fail('expected stats');
      return;
    case RpcMethod.RemoveMessages:
    case RpcMethod.RemoveAllMessages:
      if (result !== true) fail('expected true');
      return;
    case RpcMethod.AddLiveSession:
    case RpcMethod.GetLiveSession:
    case RpcMethod.RemoveLiveSession:
      if (typeof result !== 'boolean') fail('expected a boolean');
      return;
    case RpcMethod.Ping:
      if (result !== 'pong') fail('expected "pong"');
      return;
    default:
      if (!isObject(result)) fail('expected an object');
  }
}

/**
 * Params of each method: the first byte picks the method, the rest is its params (JSON as the mutator makes it, or, if
 * that is not JSON, the text as a string), sent in a well-formed request through RpcDispatcher.handleFrame. Checked:
 * the answer contract, and for a success the method's result type (an add answers with the messageId it was given).
 */
export const target: FuzzTarget = {
  name: 'rpc-params',
  description: 'server: params of every method, in well-formed requests, through RpcDispatcher.handleFrame (validation and dispatch)',
  dictionary: RPC_DICTIONARY,
  async setup() {
    const harness = new RpcDispatcherHarness();
    return {
      async run(input: Buffer) {
        const method = METHODS[(input[0] ?? 0) % METHODS.length];
        const text = input.subarray(1).toString('utf8');
        let params: unknown;
        try {
          params = JSON.parse(text);
        } catch {
          params = text;
        }
        const frame = JSON.stringify({ jsonrpc: '2.0', id: 7, method, params });
        const answer = checkJsonRpcAnswer(frame, await harness.handle(frame));
        if (isObject(answer) && 'result' in answer) checkResult(method, params, answer.result);
      },
      async close() {},
    };
  },
};
