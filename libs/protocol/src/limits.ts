/**
 * Fixed limits on what a request may carry. The OpenRPC document (see `openrpc-document.ts`) states them in its
 * schemas, and the server validates incoming params with those schemas, so the two cannot disagree.
 */

/** Identifiers (`connectionId`, `messageId`, `sessionId`) are opaque but bounded, in characters (code points)… */
export const MAX_ID_LENGTH = 512;
/** …and in UTF-8 bytes: two keys together must stay well within PostgreSQL's btree entry limit (about 2.7 kB). */
export const MAX_ID_BYTES = 1024;
/** did:peer:2 DIDs with several services run to a few kilobytes. */
export const MAX_DID_LENGTH = 8192;
/** Items of `recipientDids` and `messageIds`. */
export const MAX_LIST_LENGTH = 10_000;
/** DIDComm messages nest a handful of levels; JSON nested thousands deep cannot even be serialised again. */
export const MAX_PAYLOAD_DEPTH = 1000;
/** Requests in one batch: one frame cannot queue more work than this. */
export const MAX_BATCH_REQUESTS = 1000;
/** Characters of a request `id` string (echoed in the response, so bounded). */
export const MAX_REQUEST_ID_LENGTH = 1024;
