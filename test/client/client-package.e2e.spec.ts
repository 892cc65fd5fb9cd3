import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as Client from '@didcomm-mpr/client';
import * as Protocol from '@didcomm-mpr/protocol';

const execFileAsync = promisify(execFile);
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CLIENT_DIR = path.join(REPO_ROOT, 'libs', 'client');
const TSC = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc');

/*
 * The environment of the npm and node children. Without the `npm_*` variables of a surrounding
 * `npm test` / `npx jest` (npm_config_local_prefix and the like), the install in the temporary project
 * could be steered back into this repository; without NODE_PATH, `require` there finds only what the
 * tarball brought.
 */
const CHILD_ENV = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'NODE_PATH'));

/** Runs a command to its end; on failure, throws with everything it printed. */
async function run(file: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { cwd, env: CHILD_ENV, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} (in ${cwd}) failed: ${(error as Error).message}\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

/** Every file under `dir`. */
function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(path.join(dir, entry.name)) : [path.join(dir, entry.name)]));
}

/** A consumer's TypeScript, compiled against the installed package only: it must find every type it names. */
const CONSUMER_SOURCE = `
import {
  MessagePickupRepositoryClient,
  PickupRpcError,
  RETRYABLE_ERROR_CODES,
  RpcErrorCode,
  RpcMethod,
  type AddMessageParams,
  type QueuedMessage,
  type RpcMethods,
} from '@didcomm-mpr/client';

const params: AddMessageParams = { connectionId: 'c', recipientDids: ['did:key:z6Mk'], payload: { ciphertext: 'x' } };

export async function pickUp(client: MessagePickupRepositoryClient): Promise<QueuedMessage[]> {
  const added: RpcMethods['addMessage']['result'] = await client.addMessage(params);
  const messages = await client.takeFromQueue({ connectionId: params.connectionId, limitBytes: 1024 });
  const first: string | undefined = messages[0]?.encryptedMessage ? added.messageId : undefined;
  void first;
  return messages;
}

export const method: 'takeFromQueue' = RpcMethod.TakeFromQueue;
export const retryable = (error: PickupRpcError): boolean => error.retryable || RETRYABLE_ERROR_CODES.has(RpcErrorCode.StorageUnavailable);
`;

/**
 * The published form of @didcomm-mpr/client: packed with `npm pack` (its prepack builds it, the protocol
 * compiled in), installed from the tarball into an empty project with nothing from this repository, then
 * loaded by Node and compiled against by TypeScript. The wire contract it carries must be libs/protocol's.
 */
describe('the packed @didcomm-mpr/client', () => {
  let tmp: string;
  let consumer: string;
  let installed: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-client-package-'));
    await run('npm', ['pack', '--pack-destination', tmp], CLIENT_DIR);
    const tarballs = fs.readdirSync(tmp).filter((name) => name.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);

    consumer = path.join(tmp, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, tarballs[0]!)], consumer);
    installed = path.join(consumer, 'node_modules', '@didcomm-mpr', 'client');
  }, 120_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('installs from the tarball alone: ws is its only dependency, the protocol is compiled in', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as {
      main: string;
      types: string;
      dependencies?: Record<string, string>;
    };
    expect(manifest.main).toBe('dist/index.js');
    expect(manifest.types).toBe('dist/index.d.ts');
    expect(Object.keys(manifest.dependencies ?? {})).toEqual(['ws']);
    // What npm installed: the tarball and ws, nothing else (no @didcomm-mpr/protocol asked of the registry).
    const lock = JSON.parse(fs.readFileSync(path.join(consumer, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    expect(
      Object.keys(lock.packages)
        .filter((key) => key !== '')
        .sort(),
    ).toEqual(['node_modules/@didcomm-mpr/client', 'node_modules/ws']);

    const emitted = filesUnder(path.join(installed, 'dist')).map((file) => path.relative(installed, file));
    expect(emitted).toEqual(
      expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/protocol/index.js', 'dist/protocol/index.d.ts']),
    );
    // A specifier left pointing at the workspace package would only resolve inside this repository.
    const dangling = emitted.filter((file) => /["']@didcomm-mpr\/protocol/.test(fs.readFileSync(path.join(installed, file), 'utf8')));
    expect(dangling).toEqual([]);
  });

  it('loads in Node with the protocol constants and the same exports as the source', async () => {
    const script = `
      const client = require('@didcomm-mpr/client');
      console.log(JSON.stringify({
        exports: Object.keys(client).sort(),
        RpcMethod: client.RpcMethod,
        RpcNotification: client.RpcNotification,
        RpcErrorCode: client.RpcErrorCode,
        retryable: [...client.RETRYABLE_ERROR_CODES].sort(),
        resolved: require.resolve('@didcomm-mpr/client'),
      }));
    `;
    const loaded = JSON.parse(await run(process.execPath, ['-e', script], consumer)) as Record<string, unknown>;
    expect(loaded.RpcMethod).toEqual(Protocol.RpcMethod);
    expect(loaded.RpcNotification).toEqual(Protocol.RpcNotification);
    expect(loaded.RpcErrorCode).toEqual(Protocol.RpcErrorCode);
    expect(loaded.retryable).toEqual([...Protocol.RETRYABLE_ERROR_CODES].sort());
    expect(loaded.exports).toEqual(Object.keys(Client).sort());
    expect(loaded.resolved).toBe(fs.realpathSync(path.join(installed, 'dist', 'index.js')));
  });

  it.each([
    ['node10', 'commonjs'],
    ['nodenext', 'nodenext'],
  ])('gives a TypeScript consumer (moduleResolution %s) declarations that resolve', async (moduleResolution, module) => {
    fs.writeFileSync(path.join(consumer, 'consumer.ts'), CONSUMER_SOURCE);
    // skipLibCheck off: an import in the package's .d.ts that does not resolve is an error, not an `any`.
    const config = {
      compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, types: [], target: 'es2022', module, moduleResolution },
      files: ['consumer.ts'],
    };
    fs.writeFileSync(path.join(consumer, `tsconfig.${moduleResolution}.json`), JSON.stringify(config));
    await run(TSC, ['-p', `tsconfig.${moduleResolution}.json`], consumer);
  });
});
