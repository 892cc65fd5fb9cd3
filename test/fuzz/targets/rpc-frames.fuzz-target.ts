import { FuzzTarget } from '../support/fuzz-target';
import { checkJsonRpcAnswer } from './json-rpc-answer.oracle';
import { RPC_DICTIONARY, RpcDispatcherHarness } from './rpc-dispatcher.harness';

/**
 * Any bytes as one text frame (as the WebSocket hands it over, decoded as UTF-8) through the server's frame handling:
 * JSON parsing, batches, request validation, params and dispatch to the queue. Checked: the JSON-RPC 2.0 answer
 * contract (see the oracle), and no crash, hang or unhandled rejection.
 */
export const target: FuzzTarget = {
  name: 'rpc-frames',
  description: 'server: a text frame through RpcDispatcher.handleFrame (JSON, batches, requests, params, dispatch)',
  dictionary: RPC_DICTIONARY,
  async setup() {
    const harness = new RpcDispatcherHarness();
    return {
      async run(input: Buffer) {
        const frame = input.toString('utf8');
        checkJsonRpcAnswer(frame, await harness.handle(frame));
      },
      async close() {},
    };
  },
};
