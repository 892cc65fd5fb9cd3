import { Injectable } from '@nestjs/common';

/** Whether new sockets and new requests are accepted; closed once at shutdown. */
@Injectable()
export class ConnectionGate {
  private open = true;

  get accepting(): boolean {
    return this.open;
  }

  close(): void {
    this.open = false;
  }
}
