import { randomBytes } from 'node:crypto';

/** Serialised size the bench payloads are tuned to: 1.8 KiB, a typical DIDComm message (the figures use it). */
export const PAYLOAD_TARGET_BYTES = 1843;

const RECIPIENT_DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';

function b64url(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** A JSON object shaped like a DIDComm JWE (authcrypt envelope) whose serialised size is `targetBytes`. */
export function makeJwePayload(targetBytes = PAYLOAD_TARGET_BYTES): Record<string, unknown> {
  const header = {
    alg: 'ECDH-1PU+A256KW',
    enc: 'A256CBC-HS512',
    typ: 'application/didcomm-encrypted+json',
    skid: `${RECIPIENT_DID}#key-1`,
  };
  const build = (ciphertext: string) => ({
    protected: Buffer.from(JSON.stringify(header)).toString('base64url'),
    iv: b64url(16),
    ciphertext,
    tag: b64url(32),
    recipients: [{ encrypted_key: b64url(40), header: { kid: `${RECIPIENT_DID}#key-2` } }],
  });
  const skeleton = JSON.stringify(build('')).length;
  const ciphertext = randomBytes(Math.max(0, targetBytes - skeleton))
    .toString('base64url')
    .slice(0, Math.max(0, targetBytes - skeleton));
  return build(ciphertext);
}

/** A few distinct payloads, pre-serialised, cycled through so the load generator spends no CPU on JSON. */
export class PayloadPool {
  readonly texts: string[];
  private next = 0;

  constructor(size = 32, targetBytes = PAYLOAD_TARGET_BYTES) {
    this.texts = Array.from({ length: size }, () => JSON.stringify(makeJwePayload(targetBytes)));
  }

  take(): string {
    const text = this.texts[this.next];
    this.next = (this.next + 1) % this.texts.length;
    return text;
  }

  get bytes(): number {
    return Buffer.byteLength(this.texts[0]);
  }
}

export const BENCH_RECIPIENT_DIDS_JSON = JSON.stringify([RECIPIENT_DID]);
export const BENCH_RECIPIENT_DID = RECIPIENT_DID;
