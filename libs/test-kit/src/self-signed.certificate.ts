import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const certificates = new Map<string, { key: string; cert: string }>();

/**
 * A self-signed certificate for one host name, made by the `openssl` command (kept per test process), so that a
 * push SDK talks to a fake on loopback with its TLS checks on: the fake presents this certificate and the SDK's
 * connection trusts exactly it.
 */
export function selfSignedCertificate(hostname: string): { key: string; cert: string } {
  const known = certificates.get(hostname);
  if (known) return known;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-fake-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${hostname}`, '-addext', `subjectAltName=DNS:${hostname}`,
        '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    const made = { key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8') };
    certificates.set(hostname, made);
    return made;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
