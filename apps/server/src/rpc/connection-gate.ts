import { Injectable } from '@nestjs/common';
import { InstanceLifecycle } from '../lifecycle';

/** Whether new sockets and new requests are accepted; closed once at shutdown, when the instance starts draining. */
@Injectable()
export class ConnectionGate {
  constructor(private readonly lifecycle: InstanceLifecycle) {}

  get accepting(): boolean {
    return !this.lifecycle.draining;
  }

  close(): void {
    this.lifecycle.beginDraining();
  }
}
