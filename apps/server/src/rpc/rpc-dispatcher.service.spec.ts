import { Writable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { buildOpenRpcDocument } from '@didcomm-mpr/protocol';
import { JsonLinesLogger } from '../json-lines.logger';
import { LiveSessionService } from '../live-session';
import { MetricsService } from '../metrics';
import { QueueService } from '../queue';
import { AccessGrant } from './access-grant';
import { AccessPolicy } from './access.policy';
import { RpcDispatcher } from './rpc-dispatcher.service';
import { RpcParamsValidator } from './rpc-params.validator';

/** The dispatcher's own logic, with stand-ins for the services (their behaviour is covered end to end elsewhere). */
describe('RpcDispatcher', () => {
  it('logs an unexpected method error once, with the method, the socket and the connectionId, and answers -32603 without internals', async () => {
    const lines: Record<string, unknown>[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    Logger.overrideLogger(new JsonLinesLogger(['fatal', 'error', 'warn', 'log'], 'instance-1', out));
    try {
      const queue = { addMessage: () => Promise.reject(new Error('secret internals')) } as unknown as QueueService;
      const document = buildOpenRpcDocument({ maxPayloadBytes: 1024, maxTakeMessages: 10 });
      const metrics = new MetricsService();
      const dispatcher = new RpcDispatcher(
        queue,
        {} as LiveSessionService,
        metrics,
        new RpcParamsValidator(document),
        document,
        new AccessPolicy(metrics),
      );
      const frame = JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'addMessage',
        params: { connectionId: 'conn-9', recipientDids: ['did:a'], payload: {} },
      });
      const reply = JSON.parse(
        (await dispatcher.handleFrame(frame, {
          id: 'socket-3',
          isOpen: true,
          bufferedAmount: 0,
          send: async () => undefined,
          grant: AccessGrant.anonymous(),
        }))!,
      );
      expect(reply).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32603, message: 'Internal error', data: { retryable: false } } });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 'error',
        instanceId: 'instance-1',
        context: 'RpcDispatcher',
        method: 'addMessage',
        socketId: 'socket-3',
        connectionId: 'conn-9',
        message: expect.stringContaining('secret internals'),
        stack: expect.stringContaining('Error: secret internals'),
      });
    } finally {
      Logger.overrideLogger(false);
    }
  });
});
