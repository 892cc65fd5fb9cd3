/*
 * Child-process program of test/credo/credo06-mediation.e2e.spec.ts: runs real Credo 0.6 agents (whose
 * ES-module dependencies CommonJS jest cannot load; plain Node can) against the servers the test started,
 * and prints one JSON line per step: {"step": name, ...} or {"error": message}. Mode (argv[2]):
 * - single: mediator on server A; live delivery, then delivery after the recipient was offline;
 * - fleet: mediators A and B (one deployment: shared storage and keys) on servers A and B behind a
 *   switchable "load balancer"; the recipient is live on A, the sender talks to B.
 */
import { DidCommMediatorPickupStrategy } from '@credo-ts/didcomm';
import { findFreePort } from '@didcomm-mpr/embedded-postgres';
import {
  connect,
  nextBasicMessage,
  outboundSocketClosed,
  sharedMediatorState,
  startMediator,
  startRecipient,
  startSender,
} from './credo-agents';
import { CredoSwitchProxy } from './credo-switch.proxy';

const report = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const [urlA, urlB] = [process.env.MPR_URL_A!, process.env.MPR_URL_B];
  const portA = await findFreePort();
  const fleet = mode === 'fleet';
  const proxy = fleet ? await CredoSwitchProxy.start(portA) : undefined;
  const shared = sharedMediatorState();
  const endpoint = proxy ? `ws://127.0.0.1:${proxy.port}` : undefined;
  const mediatorA = await startMediator('mediator A', portA, urlA, { endpoint, shared });
  const recipient = await startRecipient('recipient');
  const sender = await startSender('sender', await findFreePort());
  report({ step: 'started' });

  // The recipient's socket of the handshake must close before mediation is requested (a Credo race with
  // in-memory storage); the grant then comes over a fresh socket.
  const handshakeSocketClosed = outboundSocketClosed(recipient, 5_000);
  const { inviterConnectionId: mediatorSideId, inviteeConnectionId: recipientSideId } = await connect(mediatorA.agent, recipient);
  await handshakeSocketClosed;
  const mediationRecipient = recipient.didcomm.mediationRecipient;
  const recipientConnection = await recipient.didcomm.connections.getById(recipientSideId);
  const mediation = await mediationRecipient.requestAndAwaitGrant(recipientConnection, 20_000);
  await mediationRecipient.setDefaultMediator(mediation);
  await mediationRecipient.initiateMessagePickup(mediation, DidCommMediatorPickupStrategy.PickUpV2LiveMode);
  await until('the live session on the server', () => mediatorA.client.getLiveSession({ connectionId: mediatorSideId }));
  report({ step: 'mediation', liveOnServer: true });

  let mediatorB: Awaited<ReturnType<typeof startMediator>> | undefined;
  let portB = 0;
  if (fleet) {
    portB = await findFreePort();
    mediatorB = await startMediator('mediator B', portB, urlB!, { endpoint, shared });
    proxy!.target = portB; // new connections (the sender's) now reach mediator B
  }

  const liveMessage = nextBasicMessage(recipient, 20_000);
  const { inviteeConnectionId: senderSideId } = await connect(recipient, sender);
  await sender.didcomm.basicMessages.sendMessage(senderSideId, 'hello live');
  report({
    step: 'live',
    content: await liveMessage,
    ...(fleet ? { senderConnectionsToB: (proxy!.connectionsTo.get(portB) ?? 0) > 0 } : {}),
  });

  if (!fleet) {
    // Offline: the wallet stops picking up and its socket closes; the mediator's live session ends.
    await mediationRecipient.stopMessagePickup();
    await recipient.shutdown();
    await until('the live session to end', async () => !(await mediatorA.client.getLiveSession({ connectionId: mediatorSideId })));
    await sender.didcomm.basicMessages.sendMessage(senderSideId, 'hello offline');
    await until(
      'the message to wait in the queue',
      async () => (await mediatorA.client.getAvailableMessageCount({ connectionId: mediatorSideId })) > 0,
    );
    report({ step: 'queued-while-offline' });
    const offlineMessage = nextBasicMessage(recipient, 20_000);
    await recipient.initialize();
    await mediationRecipient.initiateMessagePickup(mediation, DidCommMediatorPickupStrategy.PickUpV2LiveMode);
    report({ step: 'back-online', content: await offlineMessage });
  }

  report({ step: 'done' });
  // Shutting the agents down can hang on a pickup loop in this alpha; the process exits right after
  // anyway, so the clean-up gets a bounded time.
  const cleanup = async () => {
    await mediatorA.client.close();
    await mediatorB?.client.close();
    await proxy?.close();
    for (const agent of [recipient, sender, mediatorA.agent, mediatorB?.agent]) await agent?.shutdown();
  };
  await Promise.race([cleanup(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    report({ error: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) });
    process.exit(1);
  },
);
