/** The live-session module's facade: its service and the socket type that holds sessions. */
export { LiveSessionModule } from './live-session.module';
export { LiveSessionService } from './live-session.service';
export type { SessionHolder } from '../delivery';
