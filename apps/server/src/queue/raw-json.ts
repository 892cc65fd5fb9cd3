import { randomBytes } from 'node:crypto';

/**
 * JSON text stored by the queue, handed out to be embedded verbatim in a response: parsing a payload only to
 * serialise it again costs CPU on every take and blocks the event loop for multi-megabyte payloads.
 */
export class RawJson {
  constructor(readonly text: string) {}
}

// Placeholders carry a per-process random tag, so no client-supplied string can be mistaken for one.
const TAG = `\u0000raw-${randomBytes(8).toString('hex')}-`;
/** The tag as it appears inside serialised JSON (its NUL escaped), escaped again for a RegExp. */
const SERIALISED_TAG = JSON.stringify(TAG)
  .slice(1, -1)
  .replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
const PLACEHOLDERS = new RegExp(`"${SERIALISED_TAG}(\\d+)"`, 'g');

/** `JSON.stringify` that writes each `RawJson` value as its text. */
export function stringifyWithRawJson(value: unknown): string {
  const raw: string[] = [];
  const text = JSON.stringify(value, (_key, item: unknown) => (item instanceof RawJson ? `${TAG}${raw.push(item.text) - 1}` : item));
  return raw.length === 0 ? text : text.replace(PLACEHOLDERS, (_match, index: string) => raw[Number(index)]);
}
