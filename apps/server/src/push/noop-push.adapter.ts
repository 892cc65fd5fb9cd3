import { Injectable } from '@nestjs/common';
import { PushPort, PushRequest } from './push.port';

/** No push transport configured: waiting messages are picked up when the device next connects. */
@Injectable()
export class NoopPushAdapter extends PushPort {
  notify(_request: PushRequest): void {
    // Intentionally nothing: the message stays queued, which is the whole guarantee without push.
  }
}
