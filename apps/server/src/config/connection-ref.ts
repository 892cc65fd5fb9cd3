/**
 * The tenant of connections when no tokens file names one: every connection of a server configured with
 * `AUTH_TOKENS` or without authentication, and every message stored before tenants existed.
 */
export const DEFAULT_TENANT = 'default';

/**
 * One recipient connection: its `connectionId` within the tenant of the token that names it. It is the key of a
 * queue, a live session, a pub/sub channel, a push window and a remembered push token: the same `connectionId` under
 * two tenants names two of each. Carried whole from the RPC layer down to the repositories, so that no layer can
 * look a connection up by its id alone. (It lives with the configuration because tenants are configured: the tokens
 * file assigns each token its tenant.)
 */
export interface ConnectionRef {
  readonly tenant: string;
  readonly connectionId: string;
}

/**
 * One string per connection, for maps and sets. NUL separates: a tenant never contains it (tokens-file rule) and
 * a `connectionId` cannot (the params parser refuses it), so two different refs never share a key.
 */
export function refKey(ref: ConnectionRef): string {
  return `${ref.tenant}\u0000${ref.connectionId}`;
}

/** The ref a `refKey` was made from. */
export function refOfKey(key: string): ConnectionRef {
  const at = key.indexOf('\u0000');
  return { tenant: key.slice(0, at), connectionId: key.slice(at + 1) };
}

/** How logs name a connection: its id and its tenant. */
export function refLabel(ref: ConnectionRef): string {
  return `${ref.connectionId} (tenant ${ref.tenant})`;
}
