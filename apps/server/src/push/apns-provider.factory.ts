import { Injectable } from '@nestjs/common';
import { ProviderOptions } from '@parse/node-apn';
import { ApnsConfig } from '../config';

/**
 * Builds the `@parse/node-apn` provider options from the APNs configuration. A provider of its own, like
 * FcmAppFactory, so that the connection's wiring is one seam: the end-to-end tests add exactly a loopback
 * connection and their certificate authority here to reach a local fake APNs over HTTP/2 and TLS, and nothing
 * else of the APNs path.
 */
@Injectable()
export class ApnsProviderFactory {
  providerOptions(apns: ApnsConfig, requestTimeoutMs: number): ProviderOptions {
    return {
      token: { key: apns.keyFile, keyId: apns.keyId, teamId: apns.teamId },
      production: apns.production,
      requestTimeout: requestTimeoutMs,
      // The library would resend a 429 or 5xx itself at once (it looks for `Retry-After` under a name HTTP/2 never
      // delivers), hammering a throttled device before the server's backoff sees anything: the server retries alone.
      connectionRetryLimit: 0,
    };
  }
}
