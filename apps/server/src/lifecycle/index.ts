/** The lifecycle module's facade: whether migrations are done and whether the instance is draining. */
export { LifecycleModule } from './lifecycle.module';
export { InstanceLifecycle } from './instance-lifecycle';
