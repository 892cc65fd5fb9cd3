import { startTestServer, type TestServer } from '../support/test-server';
import { type RedisSingle, startRedisSingle } from '@didcomm-mpr/test-kit';
import { runCredoScenario } from '../support/credo-scenario.runner';

/**
 * Real Credo 0.6 agents (alpha line: @credo-ts/node, core and didcomm) end to end through this client and
 * the real server: a mediator using `Credo06QueueTransportRepository` with QueueOnly forwarding and
 * `wireCredo06LiveSessions`, a recipient picking up in live mode (pickup v2) over WebSocket, a sender.
 * The agents run in a child process (see credo-scenario.runner.ts); all traffic is on 127.0.0.1.
 */
describe('Credo 0.6 mediation through the Message Pickup Repository', () => {
  const servers: TestServer[] = [];
  let redis: RedisSingle | undefined;

  afterAll(async () => {
    for (const server of servers.reverse()) await server.close();
    await redis?.close();
  });

  const explain = (output: string) => `scenario output:\n${output.split('\n').slice(-60).join('\n')}`;

  it('delivers a basic message live, and again after the recipient was offline (queued, then picked up)', async () => {
    const server = await startTestServer();
    servers.push(server);
    const { lines, output, code } = await runCredoScenario('single', { MPR_URL_A: server.wsUrl }, 80_000);
    expect({ lines, code }).toEqual({
      code: 0,
      lines: [
        { step: 'started' },
        { step: 'mediation', liveOnServer: true },
        { step: 'live', content: 'hello live' },
        { step: 'queued-while-offline' },
        { step: 'back-online', content: 'hello offline' },
        { step: 'done' },
      ],
    });
    if (code !== 0) throw new Error(explain(output));
  }, 90_000);

  it('two mediators on two server instances over Redis: the sender talks to B, the recipient is live on A', async () => {
    redis = await startRedisSingle();
    const a = await startTestServer({ REDIS_URL: redis.url });
    servers.push(a);
    const b = await startTestServer({ REDIS_URL: redis.url }, a.databaseUrl);
    servers.push(b);
    const { lines, output, code } = await runCredoScenario('fleet', { MPR_URL_A: a.wsUrl, MPR_URL_B: b.wsUrl }, 80_000);
    if (code !== 0) throw new Error(explain(output));
    expect(lines).toEqual([
      { step: 'started' },
      { step: 'mediation', liveOnServer: true },
      { step: 'live', content: 'hello live', senderConnectionsToB: true },
      { step: 'done' },
    ]);
  }, 90_000);
});
