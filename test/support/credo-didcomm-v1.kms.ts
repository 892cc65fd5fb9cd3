import { createHash, randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { Kms, TypedArrayEncoder } from '@credo-ts/core';
import type { AgentContext } from '@credo-ts/core';
import { NodeKeyManagementService } from '@credo-ts/node';
import type { NodeInMemoryKeyManagementStorage } from '@credo-ts/node';

const HSALSA = 'ECDH-HSALSA20';
const XSALSA = 'XSALSA20-POLY1305';

/**
 * `@credo-ts/node`'s key management with the DIDComm v1 envelope operations it lacks (Askar has them):
 * `ECDH-HSALSA20` key agreement with `XSALSA20-POLY1305`, i.e. libsodium's `crypto_box` (authcrypt, with
 * the sender's key) and `crypto_box_seal` (anoncrypt, without), on the X25519 forms of Ed25519 keys.
 * Everything else goes to the Node implementation.
 */
export class CredoDidcommV1KeyManagementService extends NodeKeyManagementService {
  constructor(private readonly keys: NodeInMemoryKeyManagementStorage) {
    super(keys);
  }

  override isOperationSupported(agentContext: AgentContext, operation: Kms.KmsOperation): boolean {
    if (operation.operation === 'encrypt' && operation.keyAgreement?.algorithm === HSALSA) return operation.encryption.algorithm === XSALSA;
    if (operation.operation === 'decrypt' && operation.keyAgreement?.algorithm === HSALSA) return operation.decryption.algorithm === XSALSA;
    return super.isOperationSupported(agentContext, operation);
  }

  override async encrypt(agentContext: AgentContext, options: Kms.KmsEncryptOptions): Promise<Kms.KmsEncryptReturn> {
    const agreement = 'keyAgreement' in options.key ? options.key.keyAgreement : undefined;
    if (agreement?.algorithm !== HSALSA) return super.encrypt(agentContext, options);
    const recipient = x25519PublicKey(agreement.externalPublicJwk as Kms.KmsJwkPublic);
    const data = Uint8Array.from(options.data);
    if (!agreement.keyId) return { encrypted: Uint8Array.from(sealedBox(data, recipient)) };
    const nonce = Uint8Array.from(randomBytes(nacl.box.nonceLength));
    const secret = await this.x25519SecretKey(agentContext, agreement.keyId);
    return { encrypted: Uint8Array.from(nacl.box(data, nonce, recipient, secret)), iv: nonce };
  }

  override async decrypt(agentContext: AgentContext, options: Kms.KmsDecryptOptions): Promise<Kms.KmsDecryptReturn> {
    const agreement = 'keyAgreement' in options.key ? options.key.keyAgreement : undefined;
    if (agreement?.algorithm !== HSALSA) return super.decrypt(agentContext, options);
    if (!agreement.keyId) throw new Kms.KeyManagementError('ECDH-HSALSA20 decryption needs our keyId');
    const secret = await this.x25519SecretKey(agentContext, agreement.keyId);
    const encrypted = Uint8Array.from(options.encrypted);
    const iv = 'iv' in options.decryption ? options.decryption.iv : undefined;
    const opened = agreement.externalPublicJwk
      ? nacl.box.open(encrypted, Uint8Array.from(iv ?? []), x25519PublicKey(agreement.externalPublicJwk as Kms.KmsJwkPublic), secret)
      : sealedBoxOpen(encrypted, nacl.box.keyPair.fromSecretKey(secret));
    if (!opened) throw new Kms.KeyManagementError('ECDH-HSALSA20 decryption failed');
    return { data: Uint8Array.from(opened) };
  }

  /** libsodium's crypto_sign_ed25519_sk_to_curve25519: SHA-512 of the seed, first half (nacl clamps it). */
  private async x25519SecretKey(agentContext: AgentContext, keyId: string): Promise<Uint8Array> {
    const jwk = await this.keys.get(agentContext, keyId);
    if (!jwk || jwk.kty !== 'OKP') throw new Kms.KeyManagementKeyNotFoundError(keyId, ['node']);
    const d = TypedArrayEncoder.fromBase64(jwk.d);
    if (jwk.crv === 'X25519') return Uint8Array.from(d);
    return Uint8Array.from(createHash('sha512').update(d).digest().subarray(0, 32));
  }
}

/** The 32 raw bytes of an X25519 public JWK. */
function x25519PublicKey(jwk: Kms.KmsJwkPublic): Uint8Array {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'X25519') throw new Kms.KeyManagementError(`ECDH-HSALSA20 needs an X25519 key, got ${jwk.kty}`);
  return Uint8Array.from(TypedArrayEncoder.fromBase64(jwk.x));
}

/** libsodium's crypto_box_seal nonce: BLAKE2b-192 of the ephemeral and the recipient public keys. */
function sealNonce(ephemeralPublic: Uint8Array, recipientPublic: Uint8Array): Uint8Array {
  // @noble/hashes 2 ships ES modules only; this file runs in a plain Node child process (require(esm)).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { blake2b } = require('@noble/hashes/blake2.js') as { blake2b: (data: Uint8Array, options: { dkLen: number }) => Uint8Array };
  const input = new Uint8Array(64);
  input.set(ephemeralPublic, 0);
  input.set(recipientPublic, 32);
  return blake2b(input, { dkLen: nacl.box.nonceLength });
}

/** crypto_box_seal: an ephemeral key pair, its public key prepended to the box. */
function sealedBox(message: Uint8Array, recipientPublic: Uint8Array): Uint8Array {
  const ephemeral = nacl.box.keyPair();
  const box = nacl.box(message, sealNonce(ephemeral.publicKey, recipientPublic), recipientPublic, ephemeral.secretKey);
  const sealed = new Uint8Array(32 + box.length);
  sealed.set(ephemeral.publicKey, 0);
  sealed.set(box, 32);
  return sealed;
}

/** crypto_box_seal_open. */
function sealedBoxOpen(sealed: Uint8Array, recipient: nacl.BoxKeyPair): Uint8Array | null {
  if (sealed.length < 32 + nacl.box.overheadLength) return null;
  const ephemeralPublic = sealed.subarray(0, 32);
  return nacl.box.open(sealed.subarray(32), sealNonce(ephemeralPublic, recipient.publicKey), ephemeralPublic, recipient.secretKey);
}
