/**
 * Prints the SHA-256 digest of a bearer token, as the `sha256` of an AUTH_TOKENS_FILE entry:
 *
 *   npm run -s token-digest                       (asks for the token; the input is not shown)
 *   printf %s "$TOKEN" | npm run -s token-digest  (from a pipe: nothing lands in the shell history)
 *   node apps/server/dist/token-digest.command.js (the same, from a build or the container image)
 *
 * The token is read from standard input, never from the command line, so it appears neither in the shell's history
 * nor in the process list. Surrounding whitespace (the newline of `echo`) is dropped, as the server drops it from
 * the Authorization header. The digest is computed by the server's own function, so the two always agree.
 */
import { tokenDigest } from './config';

const ETX = '\u0003';
const BACKSPACE = ['\u0008', '\u007f'];

/** Reads one line from the terminal without echoing it. */
function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    process.stderr.write(prompt);
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    let typed = '';
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          resolve(typed);
          return;
        }
        if (char === ETX) {
          stdin.setRawMode(false);
          process.stderr.write('\n');
          process.exit(130);
        }
        if (BACKSPACE.includes(char)) typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

async function readPiped(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<number> {
  const input = process.stdin.isTTY ? await readHidden('Token (not shown): ') : await readPiped();
  const token = input.trim();
  if (token === '') {
    process.stderr.write(
      'No token on standard input: pipe it in (printf %s "$TOKEN" | npm run -s token-digest) or type it at the prompt.\n',
    );
    return 1;
  }
  if (/\s/.test(token)) {
    process.stderr.write('The token contains whitespace: a bearer token is one word (give one token per run).\n');
    return 1;
  }
  process.stdout.write(`${tokenDigest(token)}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`token-digest failed: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
