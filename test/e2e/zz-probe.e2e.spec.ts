import { RpcTestClient } from '../support/rpc-test-client';
import { startTestServer } from '../support/test-server';
it('probe', async () => {
  const server = await startTestServer({ MAX_PAYLOAD_BYTES: '2048', MAX_FRAME_BYTES: '70000' });
  const c = await RpcTestClient.connect(server.wsUrl);
  const log = (...a: unknown[]) => process.stdout.write(a.map((x) => typeof x === 'string' ? x : JSON.stringify(x)?.slice(0, 300)).join(' ') + '\n');
  log('binary ping', await c.sendRaw(Buffer.from('{"jsonrpc":"2.0","id":"b","method":"ping"}')));
  log('binary junk', await c.sendRaw(Buffer.from([0xff, 0xfe, 0x00, 0x80])));
  for (const d of [100, 1000, 3000, 5000, 20000, 30000]) {
    const payload = '{"a":' + '['.repeat(d) + ']'.repeat(d) + '}';
    const frame = `{"jsonrpc":"2.0","id":"d${d}","method":"addMessage","params":{"connectionId":"deep${d}","recipientDids":["x"],"payload":${payload}}}`;
    log('deep', d, frame.length, await c.sendRaw(frame).catch((e) => String(e)));
    const t = await c.request('takeFromQueue', { connectionId: `deep${d}` }, 3000).then((r) => JSON.stringify(r).length, (e) => String(e)).catch(String);
    log('take', d, t);
  }
  const deepFrame = '['.repeat(60000) + ']'.repeat(60000);
  log('deep frame', await c.sendRaw(deepFrame));
  const deepParams = `{"jsonrpc":"2.0","id":"dp","method":"ping","params":{"x":${'['.repeat(30000)}${']'.repeat(30000)}}}`;
  log('deep params', await c.sendRaw(deepParams));
  const deepId = `{"jsonrpc":"2.0","id":${'['.repeat(30000)}${']'.repeat(30000)},"method":"ping"}`;
  log('deep id', await c.sendRaw(deepId));
  log('huge', await c.sendRaw('{"jsonrpc":"2.0","id":1e400,"method":"ping"}'));
  log('huge limit', await c.sendRaw('{"jsonrpc":"2.0","id":"h","method":"takeFromQueue","params":{"connectionId":"x","limit":1e400}}'));
  // invalid utf8 text frame
  const c2 = await RpcTestClient.connect(server.wsUrl);
  (c2.socket as any)._sender.sendFrame; 
  c2.socket.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
  await c2.waitFor(() => c2.closeCode !== undefined, 3000).catch(() => undefined);
  log('invalid utf8 close', c2.closeCode, c2.received);
  log('ping after', await c.call('ping'));
  await c.close();
  await server.close();
});
