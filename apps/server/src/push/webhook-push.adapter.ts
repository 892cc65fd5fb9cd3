import { PushConfig } from '../config';
import { KnownPushToken } from './known-push-token.types';
import { PushDeliveryError } from './push-delivery.error';
import { PushDelivery, PushTransport } from './push-transport.port';
import { parseRetryAfter } from './retry-backoff.policy';

/** 4xx answers that mean "try again later" rather than "never". */
const TRANSIENT_CLIENT_STATUSES = new Set([408, 429]);

/**
 * The operator's own notification service: each push decision is a JSON POST of
 * `{tenant, connectionId, messageId, token?, type?, appId?}`, whether or not a token is known, with the shared secret in
 * `X-Webhook-Secret` when configured. 2xx is delivered; 408, 429 and 5xx are retried (honouring `Retry-After`).
 */
export class WebhookPushAdapter extends PushTransport {
  readonly name = 'webhook';

  constructor(
    private readonly webhook: { url: string; secret: string | undefined },
    private readonly push: PushConfig,
  ) {
    super();
  }

  accepts(_token: KnownPushToken | undefined): boolean {
    return true;
  }

  async send(delivery: PushDelivery, signal: AbortSignal): Promise<void> {
    const { token } = delivery;
    const body = JSON.stringify({
      tenant: delivery.ref.tenant,
      connectionId: delivery.ref.connectionId,
      messageId: delivery.messageId,
      ...(token ? { token: token.token, type: token.type, ...(token.appId !== undefined ? { appId: token.appId } : {}) } : {}),
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.webhook.secret !== undefined) headers['x-webhook-secret'] = this.webhook.secret;
    let response: Response;
    try {
      response = await fetch(this.webhook.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'error',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.push.timeoutMs)]),
      });
    } catch (error) {
      const name = (error as Error).name;
      const reason = name === 'TimeoutError' ? 'timeout' : name === 'AbortError' ? 'aborted' : 'network';
      throw new PushDeliveryError('transient', reason, (error as Error).message);
    }
    // The body is not used; reading it lets the connection be reused. If it breaks off, the status line has already
    // decided the outcome (a 2xx was accepted); the broken read is kept for the failure's message.
    let bodyError: Error | undefined;
    try {
      await response.arrayBuffer();
    } catch (error) {
      bodyError = error as Error;
    }
    if (response.ok) return;
    const status = response.status;
    const detail = bodyError ? ` (body cut short: ${bodyError.message})` : '';
    if (status >= 500 || TRANSIENT_CLIENT_STATUSES.has(status)) {
      throw new PushDeliveryError(
        'transient',
        String(status),
        `webhook answered ${status}${detail}`,
        parseRetryAfter(response.headers.get('retry-after')),
      );
    }
    throw new PushDeliveryError('rejected', String(status), `webhook answered ${status}${detail}`);
  }

  async close(): Promise<void> {
    // fetch keeps no state of ours.
  }
}
