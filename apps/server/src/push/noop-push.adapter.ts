import { PushNotificationToken } from '@didcomm-mpr/protocol';
import { Injectable } from '@nestjs/common';
import { ConnectionRef } from '../config';
import { PushPort, PushRequest } from './push.port';

/** No push transport configured: waiting messages are picked up when the device next connects. */
@Injectable()
export class NoopPushAdapter extends PushPort {
  notify(_request: PushRequest): void {
    // Intentionally nothing: the message stays queued, which is the whole guarantee without push.
  }

  rememberToken(_ref: ConnectionRef, _token: PushNotificationToken): void {
    // Tokens are only worth keeping when something can use them.
  }

  sessionStarted(_ref: ConnectionRef): void {
    // Nothing to reset: no windows are kept without a transport.
  }
}
