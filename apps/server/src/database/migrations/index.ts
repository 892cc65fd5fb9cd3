import { CreateQueuedMessage1763800000000 } from './1763800000000-create-queued-message';
import { AddClaimedInstance1763900000000 } from './1763900000000-add-claimed-instance';
import { RetentionAndQuotas1764000000000 } from './1764000000000-retention-and-quotas';
import { CreatePushToken1764100000000 } from './1764100000000-create-push-token';
import { AddTenant1764200000000 } from './1764200000000-add-tenant';
import { SweepOnlyExpiryIndex1764400000000 } from './1764400000000-sweep-only-expiry-index';
import { TakeInIndexOrder1764500000000 } from './1764500000000-take-in-index-order';
import { RemoveByKey1764600000000 } from './1764600000000-remove-by-key';

/** Every migration, in order. Listed explicitly so the same code runs from ts-jest and from the build. */
export const MIGRATIONS = [
  CreateQueuedMessage1763800000000,
  AddClaimedInstance1763900000000,
  RetentionAndQuotas1764000000000,
  CreatePushToken1764100000000,
  AddTenant1764200000000,
  SweepOnlyExpiryIndex1764400000000,
  TakeInIndexOrder1764500000000,
  RemoveByKey1764600000000,
];
