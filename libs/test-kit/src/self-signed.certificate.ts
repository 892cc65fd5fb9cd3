import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const certificates = new Map<string, { key: string; cert: string }>();

/**
 * A self-signed certificate for one host name or IP address, made by the `openssl` command (kept per test process),
 * so that a client talks to a server or a fake on loopback with its TLS checks on: the server presents this
 * certificate and the client trusts exactly it (as its CA).
 */
export function selfSignedCertificate(hostname: string, variant = 0): { key: string; cert: string } {
  // `variant`: another certificate for the same host (a rotation).
  const cacheKey = `${hostname}#${variant}`;
  const known = certificates.get(cacheKey);
  if (known) return known;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-fake-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${hostname}`,
        '-addext',
        `subjectAltName=${isIP(hostname) ? 'IP' : 'DNS'}:${hostname}`,
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const made = { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
    certificates.set(cacheKey, made);
    return made;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
