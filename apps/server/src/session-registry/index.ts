/** The session registry's facade: the fleet-wide record of live-session owners. */
export { SessionRegistryModule } from './session-registry.module';
export { SessionRegistryPort, type SessionOwner, type ClaimOutcome } from './session-registry.port';
