/** The queue module's facade: its service, the exceptions it throws, and how its JSON payloads are serialised. */
export { QueueModule } from './queue.module';
export { QueueService, type QueueParams, type TakenMessage } from './queue.service';
export { QueueException, QueueExceptionCode } from './queue.exception';
export { RawJson, stringifyWithRawJson } from './raw-json';
