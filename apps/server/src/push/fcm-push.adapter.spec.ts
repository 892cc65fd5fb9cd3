import { classify } from './fcm-push.adapter';

const sdkError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('FCM failure classification', () => {
  it('treats unregistered and invalid registration tokens as dead', () => {
    expect(classify(sdkError('messaging/registration-token-not-registered', 'Requested entity was not found.')).kind).toBe('dead-token');
    expect(classify(sdkError('messaging/invalid-registration-token', 'Invalid registration token')).kind).toBe('dead-token');
    expect(classify(sdkError('messaging/invalid-argument', 'The registration token is not a valid FCM registration token')).kind).toBe(
      'dead-token',
    );
  });

  it('does not blame the token for an invalid argument elsewhere in the message', () => {
    expect(classify(sdkError('messaging/invalid-argument', 'Invalid JSON payload received. Unknown name "foo"'))).toMatchObject({
      kind: 'rejected',
      reason: 'invalid-argument',
    });
    expect(classify(sdkError('messaging/invalid-argument', 'Message is too big'))).toMatchObject({ kind: 'rejected' });
  });

  it('retries access-token fetch failures (network included), unavailability and throttling', () => {
    expect(
      classify(sdkError('app/invalid-credential', 'Failed to fetch a valid Google OAuth2 access token: getaddrinfo ENOTFOUND')),
    ).toMatchObject({ kind: 'transient', reason: 'invalid-credential' });
    expect(classify(sdkError('messaging/server-unavailable', 'unavailable')).kind).toBe('transient');
    expect(classify(sdkError('messaging/message-rate-exceeded', 'quota')).kind).toBe('transient');
    expect(classify(new Error('socket hang up'))).toMatchObject({ kind: 'transient', reason: 'network' });
  });
});
