/** The pub/sub module's facade: per-connection channels between server instances. */
export { PubSubModule } from './pubsub.module';
export { PubSubPort, type AvailableMessage, type MessagesAvailableEvent, type MessagesAvailableHandler } from './pubsub.port';
