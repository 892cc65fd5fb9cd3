import { createPrivateKey, KeyObject, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { createSecureContext } from 'node:tls';
import { TlsConfig } from './app-config';
import { ConfigError } from './config.error';

/** The PEM texts the HTTPS server is given (at boot, and again at each SIGHUP). */
export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads TLS_CERT_FILE and TLS_KEY_FILE and checks that they are a certificate and the private key that goes with it,
 * so that a wrong file stops the server at boot (or is refused at a SIGHUP, keeping the pair in force) instead of
 * failing every handshake. Throws a `ConfigError` naming the variable at fault.
 */
export function readTlsCredentials(tls: TlsConfig): TlsCredentials {
  const cert = readPem('TLS_CERT_FILE', tls.certFile);
  const key = readPem('TLS_KEY_FILE', tls.keyFile);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError('TLS_CERT_FILE', `"${tls.certFile}" holds no PEM certificate: ${(error as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new ConfigError(
      'TLS_KEY_FILE',
      `"${tls.keyFile}" holds no PEM private key (an encrypted key is not supported): ${(error as Error).message}`,
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      'TLS_KEY_FILE',
      `"${tls.keyFile}" is not the private key of the certificate in TLS_CERT_FILE ("${tls.certFile}")`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError('TLS_CERT_FILE', `"${tls.certFile}" and TLS_KEY_FILE cannot be used together: ${(error as Error).message}`);
  }
  return { cert, key };
}

function readPem(variable: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new ConfigError(
      variable,
      `names a file that cannot be read: "${file}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}
