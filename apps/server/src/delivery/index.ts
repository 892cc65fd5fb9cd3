/** The delivery module's facade: what happens to messages once committed or pending again. */
export { DeliveryModule } from './delivery.module';
export { DeliveryService, type CommittedMessage } from './delivery.service';
export type { LiveSession } from './local-session.table';
export type { SessionHolder } from './session-holder';
