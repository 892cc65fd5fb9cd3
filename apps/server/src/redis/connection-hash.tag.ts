import { ConnectionRef } from '../config';

/** '%' (the escape itself), ':' (the separator) and the braces that delimit a hash tag. */
const RESERVED = /[%:{}]/g;

function encodePart(value: string): string {
  return value.replace(RESERVED, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `{<tenant>:<connectionId>}`: the hash tag of every Redis key and channel of one connection (its pub/sub channel, its
 * session record), so that on a cluster they share one slot. Both parts are percent-encoded ('%', ':', '{', '}'), so
 * the tag ends where it should and no tenant/connectionId pair can produce another pair's tag: tenant "a" with
 * connection "b:c" and tenant "a:b" with connection "c" stay apart.
 */
export function connectionHashTag(ref: ConnectionRef): string {
  return `{${encodePart(ref.tenant)}:${encodePart(ref.connectionId)}}`;
}
