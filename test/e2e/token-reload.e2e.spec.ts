import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import {
  bearer,
  createTestDatabase,
  JsonRpcWsClient,
  REPO_ROOT,
  selfSignedCertificate,
  ServerProcess,
  TestToken,
  testToken,
  upgradeOutcome,
  writeFileAtomically,
  writeTokensFile,
} from '@didcomm-mpr/test-kit';

jest.setTimeout(120_000);

/**
 * The server as a real process with AUTH_TOKENS_FILE and TLS: a bad file stops it at boot (exit 78); SIGHUP applies
 * a changed file (a removed token's socket closes with 1008 within a second, its sessions end, its next upgrade gets
 * 401) or keeps the tokens in force when the file is bad; SIGHUP rotates the certificate without dropping sockets;
 * and the digest command's output is what the file needs.
 */

const databases: { drop: () => Promise<void> }[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'mpr-token-reload-'));

async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The outcome of a `wss://` upgrade trusting `ca`: 'open', or the HTTP status of the refusal. */
function upgrade(url: string, ca: string[], headers: Record<string, string>): Promise<'open' | number> {
  return upgradeOutcome(url, headers, ca);
}

/** SHA-256 fingerprint of the certificate a new TLS connection to the port is given. */
function servedFingerprint(port: number, ca: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** Runs `npm run -s token-digest` with `input` on its standard input. */
function tokenDigestCommand(input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'token-digest'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Whether a log line of the server (JSON lines) has a message matching `pattern`. */
function logged(server: ServerProcess, pattern: RegExp): boolean {
  return server
    .output()
    .split('\n')
    .some((line) => {
      try {
        return pattern.test(String((JSON.parse(line) as { message?: unknown }).message));
      } catch {
        return false;
      }
    });
}

async function freshDatabase(): Promise<string> {
  const database = await createTestDatabase();
  databases.push(database);
  return database.url;
}

afterAll(async () => {
  await ServerProcess.stopAll();
  for (const database of databases) await database.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the token digest command', () => {
  it('prints the SHA-256 hex of the token read from standard input, whitespace around it dropped', async () => {
    const { code, stdout } = await tokenDigestCommand('  s3cret-token\n');
    expect(code).toBe(0);
    expect(stdout).toBe(`${createHash('sha256').update('s3cret-token').digest('hex')}\n`);
  });

  it('refuses an empty input with a message and exit code 1, printing no digest', async () => {
    const { code, stdout, stderr } = await tokenDigestCommand('\n');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/No token on standard input/);
  });
});

describe('a bad AUTH_TOKENS_FILE at boot', () => {
  it('stops the server with exit code 78, naming the entry and the field', async () => {
    const file = path.join(dir, 'bad-at-boot.json');
    const good = testToken('good', 't');
    writeTokensFile(file, [good]);
    const sha256 = createHash('sha256').update('x').digest('hex');
    writeFileSync(
      file,
      JSON.stringify({
        tokens: [
          { name: 'good', sha256, tenant: 't', role: 'mediator' },
          { name: 'admin-1', sha256: sha256.replace(/^./, 'f'), tenant: 't', role: 'root' },
        ],
      }),
    );
    const server = await ServerProcess.start({
      env: { DATABASE_URL: await freshDatabase(), AUTH_TOKENS_FILE: file },
      waitForHealth: false,
    });
    const exit = await server.waitForExit(60_000);
    expect(exit.code).toBe(78);
    expect(
      logged(server, /AUTH_TOKENS_FILE .*bad-at-boot\.json": tokens\[1\] \("admin-1"\) field "role" must be one of "mediator", "monitor"/),
    ).toBe(true);
  });
});

describe('a server with AUTH_TOKENS_FILE and TLS, reloaded with SIGHUP', () => {
  const file = path.join(dir, 'tokens.json');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  const first = selfSignedCertificate('127.0.0.1', 1);
  const second = selfSignedCertificate('127.0.0.1', 2);
  const ca = [first.cert, second.cert];
  const kept = testToken('kept', 'tenant-1');
  const removed = testToken('removed', 'tenant-1');
  const added = testToken('added', 'tenant-1');
  let server: ServerProcess;
  const clients: JsonRpcWsClient[] = [];
  const connect = async (token: TestToken) => {
    const client = await JsonRpcWsClient.connect(server.wsUrl, { headers: bearer(token), ca });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    writeFileSync(certFile, first.cert);
    writeFileSync(keyFile, first.key);
    writeTokensFile(file, [kept, removed]);
    server = await ServerProcess.start({
      env: { DATABASE_URL: await freshDatabase(), AUTH_TOKENS_FILE: file, TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile },
      tls: { ca: first.cert },
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.closeQuietly()));
  });

  it('serves wss:// and https:// on its one port', async () => {
    expect(server.wsUrl).toMatch(/^wss:\/\//);
    const status = await new Promise<number>((resolve, reject) =>
      httpsGet(`${server.httpUrl}/health`, { ca: first.cert }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      }).once('error', reject),
    );
    expect(status).toBe(200);
    expect(await (await connect(kept)).call('ping')).toBe('pong');
  });

  it('after a token is removed: its socket closes with 1008 within a second, its session ends, its next upgrade gets 401', async () => {
    const keeper = await connect(kept);
    const goner = await connect(removed);
    const c = `held-${Date.now()}`;
    expect(await goner.call('addLiveSession', { connectionId: c, sessionId: 's' })).toBe(true);
    const { messageId } = await keeper.call<{ messageId: string }>('addMessage', {
      connectionId: c,
      recipientDids: ['did:x'],
      payload: { in: 'flight' },
    });
    await goner.waitFor(() => goner.notifiedIds(c).includes(messageId), 5_000, 'the live notification');
    expect(await keeper.call('getAvailableMessageCount', { connectionId: c })).toBe(0);

    let closedAt = 0;
    const closed = new Promise<number>((resolve) =>
      goner.onClose((code) => {
        closedAt = performance.now();
        resolve(code);
      }),
    );
    writeTokensFile(file, [kept, added]);
    const signalledAt = performance.now();
    server.kill('SIGHUP');
    expect(await closed).toBe(1008);
    expect(closedAt - signalledAt).toBeLessThan(1_000);
    await waitUntil(() => logged(server, /^SIGHUP: tokens reloaded from /), 5_000, 'the SIGHUP reload to be logged');

    // Its session ended as on any close: the notified message is pending again.
    await waitUntil(async () => (await keeper.call('getLiveSession', { connectionId: c })) === false, 3_000, 'the session to end');
    await waitUntil(
      async () => (await keeper.call('getAvailableMessageCount', { connectionId: c })) === 1,
      3_000,
      'the message to be pending again',
    );
    expect(await upgrade(server.wsUrl, ca, bearer(removed))).toBe(401);
    expect(await upgrade(server.wsUrl, ca, bearer(added))).toBe('open');
    expect(keeper.open).toBe(true);
    expect(await keeper.call('ping')).toBe('pong');
    // Logs and metrics name tokens, never show them.
    for (const token of [kept, removed, added]) expect(server.output()).not.toContain(token.token);
  });

  it('keeps the tokens in force when the file no longer parses, and logs why', async () => {
    const keeper = await connect(kept);
    const newcomer = testToken('newcomer', 'tenant-1');
    writeFileAtomically(file, '{"tokens": [');
    server.kill('SIGHUP');
    await waitUntil(
      () => logged(server, /^SIGHUP: the tokens file was not applied, the 2 tokens in force stay: .*is not JSON/),
      5_000,
      'the failed reload to be logged',
    );
    // A well-formed file with one bad entry is refused whole: its new token is not accepted either.
    writeTokensFile(file, [kept, added, newcomer]);
    const withBadEntry = JSON.parse(readFileSync(file, 'utf8')) as { tokens: Record<string, unknown>[] };
    withBadEntry.tokens[2].role = 'superuser';
    writeFileAtomically(file, JSON.stringify(withBadEntry));
    server.kill('SIGHUP');
    await waitUntil(
      () => logged(server, /^SIGHUP: the tokens file was not applied.*tokens\[2\] \("newcomer"\) field "role"/),
      5_000,
      'the refused entry to be named',
    );
    expect(await upgrade(server.wsUrl, ca, bearer(kept))).toBe('open');
    expect(await upgrade(server.wsUrl, ca, bearer(added))).toBe('open');
    expect(await upgrade(server.wsUrl, ca, bearer(newcomer))).toBe(401);
    expect(keeper.open).toBe(true);
    writeTokensFile(file, [kept, added]);
  });

  it('a digest printed by the token digest command admits its token once the file lists it', async () => {
    const token = 'operator-made-token-1234';
    const { stdout } = await tokenDigestCommand(`${token}\n`);
    writeFileAtomically(
      file,
      JSON.stringify({
        tokens: [
          ...[kept, added].map((t) => ({
            name: t.name,
            sha256: createHash('sha256').update(t.token).digest('hex'),
            tenant: t.tenant,
            role: t.role,
          })),
          { name: 'operator', sha256: stdout.trim(), tenant: 'tenant-1', role: 'monitor' },
        ],
      }),
    );
    server.kill('SIGHUP');
    await waitUntil(
      async () => (await upgrade(server.wsUrl, ca, { Authorization: `Bearer ${token}` })) === 'open',
      5_000,
      'the operator token to be accepted',
    );
  });

  it('rotates the certificate on SIGHUP without dropping open sockets, and keeps it when the new pair is bad', async () => {
    const open = await connect(kept);
    const firstPrint = new X509Certificate(first.cert).fingerprint256;
    const secondPrint = new X509Certificate(second.cert).fingerprint256;
    expect(await servedFingerprint(server.port, ca)).toBe(firstPrint);
    writeFileAtomically(certFile, second.cert);
    writeFileAtomically(keyFile, second.key);
    server.kill('SIGHUP');
    await waitUntil(
      async () => (await servedFingerprint(server.port, ca)) === secondPrint,
      5_000,
      'new connections to get the new certificate',
    );
    expect(open.open).toBe(true);
    expect(await open.call('ping')).toBe('pong');
    // A key that does not match: the certificate in force stays, and the log says why.
    writeFileAtomically(keyFile, first.key);
    server.kill('SIGHUP');
    await waitUntil(
      () => logged(server, /^SIGHUP: the certificate in force stays: .*TLS_KEY_FILE .* is not the private key/),
      5_000,
      'the refused pair to be logged',
    );
    expect(await servedFingerprint(server.port, ca)).toBe(secondPrint);
    expect(await open.call('ping')).toBe('pong');
  });
});
