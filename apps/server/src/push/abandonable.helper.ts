import { PushDeliveryError } from './push-delivery.error';

/**
 * Waits for `work` at most `timeoutMs`, or until `signal` aborts (shutdown); rejects with a transient
 * `PushDeliveryError` then. Used where the library offers no cancellation of its own.
 */
export function abandonable<T>(work: Promise<T>, timeoutMs: number, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(new PushDeliveryError('transient', 'aborted', 'shutting down'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new PushDeliveryError('transient', 'timeout', `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        done();
        resolve(value);
      },
      (error: unknown) => {
        done();
        reject(error);
      },
    );
  });
}
