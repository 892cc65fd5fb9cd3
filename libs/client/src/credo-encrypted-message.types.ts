/**
 * Credo's DIDComm v1 encrypted message (`EncryptedMessage` in 0.5, `DidCommEncryptedMessage` in 0.6),
 * declared structurally so that this package needs no Credo import at run time or for its types.
 */
export interface CredoEncryptedMessage {
  protected: string;
  iv: string;
  ciphertext: string;
  tag: string;
}
