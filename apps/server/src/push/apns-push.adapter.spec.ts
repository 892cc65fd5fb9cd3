import { classify } from './apns-push.adapter';

describe('APNs failure classification', () => {
  it('treats unregistered and bad tokens as dead', () => {
    expect(classify({ status: 410, response: { reason: 'Unregistered' } }).kind).toBe('dead-token');
    expect(classify({ status: 400, response: { reason: 'BadDeviceToken' } }).kind).toBe('dead-token');
  });

  it('blames the configuration, not the token, for DeviceTokenNotForTopic', () => {
    expect(classify({ status: 400, response: { reason: 'DeviceTokenNotForTopic' } })).toMatchObject({
      kind: 'misconfigured',
      reason: 'DeviceTokenNotForTopic',
    });
  });

  it('retries throttling, APNs failures and connection errors', () => {
    expect(classify({ status: 429, response: { reason: 'TooManyRequests' } }).kind).toBe('transient');
    expect(classify({ status: 503, response: { reason: 'ServiceUnavailable' } }).kind).toBe('transient');
    // The library regenerates its provider token on this answer: the next attempt succeeds.
    expect(classify({ status: 403, response: { reason: 'ExpiredProviderToken' } }).kind).toBe('transient');
    expect(classify({ error: new Error('socket hang up') })).toMatchObject({ kind: 'transient', reason: 'network' });
    // A status that is not a number is no answer from Apple at all.
    expect(classify({ status: 'n/a' as unknown as number, error: new Error('stream reset') })).toMatchObject({
      kind: 'transient',
      reason: 'network',
    });
  });

  it('does not retry other refusals, without declaring the token dead', () => {
    expect(classify({ status: 403, response: { reason: 'InvalidProviderToken' } })).toMatchObject({
      kind: 'rejected',
      reason: 'InvalidProviderToken',
    });
    expect(classify({ status: 400, response: { reason: 'PayloadTooLarge' } }).kind).toBe('rejected');
  });
});
