import { Injectable } from '@nestjs/common';
import { ConnectionRef, refKey } from '../config';
import { MessagesAvailableEvent, MessagesAvailableHandler, PubSubPort } from './pubsub.port';

/** Single-instance transport: the publisher and the session holder are the same process. */
@Injectable()
export class InProcessPubSubAdapter extends PubSubPort {
  private handler: MessagesAvailableHandler | undefined;
  private readonly subscribed = new Set<string>();

  onMessagesAvailable(handler: MessagesAvailableHandler): void {
    this.handler = handler;
  }

  async publish(event: MessagesAvailableEvent): Promise<number> {
    const handler = this.handler;
    if (!handler || !this.subscribed.has(refKey(event.ref))) return 0;
    // Deliver on a later tick, as a network transport would: the publisher's reply must not wait for it.
    setImmediate(() => handler(event));
    return 1;
  }

  async subscribe(ref: ConnectionRef): Promise<void> {
    this.subscribed.add(refKey(ref));
  }

  async unsubscribe(ref: ConnectionRef): Promise<void> {
    this.subscribed.delete(refKey(ref));
  }

  health(): { status: 'up'; mode: string } {
    return { status: 'up', mode: 'in-process' };
  }
}
