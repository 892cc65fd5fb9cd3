/** The push module's facade: waking devices of connections no live session holds. */
export { PushModule } from './push.module';
export { PushPort, type PushRequest } from './push.port';
