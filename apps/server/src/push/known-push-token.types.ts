import { createHash } from 'node:crypto';
import { PushTokenRecord } from '../database';

/** A device token the server can use: the `pushNotificationToken` of an add, with a token present. */
export type KnownPushToken = PushTokenRecord;

/** sha256 of the token, hex: stored for dead tokens and used in coalescing keys, so the token itself is not. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** What logs show of a token: a prefix of its hash, enough to correlate lines, useless to send a push. */
export function tokenLabel(token: KnownPushToken | undefined): string {
  return token ? `${token.type}#${tokenHash(token.token).slice(0, 10)}` : 'none';
}
