import { CreateQueuedMessage1763800000000 } from './1763800000000-create-queued-message';
import { AddClaimedInstance1763900000000 } from './1763900000000-add-claimed-instance';

/** Every migration, in order. Listed explicitly so the same code runs from ts-jest and from the build. */
export const MIGRATIONS = [CreateQueuedMessage1763800000000, AddClaimedInstance1763900000000];
