/**
 * `transient`: worth another attempt (429, 5xx, timeouts, network errors). `dead-token`: the provider says the
 * device token will never work again (unregistered, malformed): not retried, and the token is forgotten.
 * `rejected`: any other permanent refusal (bad credentials, wrong project, a webhook's 4xx): not retried.
 * `misconfigured`: the provider refuses our configuration, not the token (APNs `DeviceTokenNotForTopic`: the
 * topic does not match the app): not retried, the token kept, and logged as an error for the operator.
 */
export type PushFailureKind = 'transient' | 'dead-token' | 'rejected' | 'misconfigured';

/** A failed push attempt, classified by the transport that made it. */
export class PushDeliveryError extends Error {
  constructor(
    readonly kind: PushFailureKind,
    /** Short, low-cardinality label for metrics and logs (a provider error code, an HTTP status). */
    readonly reason: string,
    message: string,
    /** The provider asked to wait this long before the next attempt (webhook `Retry-After`). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'PushDeliveryError';
  }
}
