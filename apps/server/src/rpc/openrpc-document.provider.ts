import { Provider } from '@nestjs/common';
import { buildOpenRpcDocument, OpenRpcDocument } from '@didcomm-mpr/protocol';
import { APP_CONFIG, AppConfig } from '../config';
import { RpcParamsValidator } from './rpc-params.validator';

/** The OpenRPC document of this server (its configured limits included), built once at boot. */
export const OPENRPC_DOCUMENT = Symbol('OPENRPC_DOCUMENT');

/** The document `rpc.discover` answers, and the validator compiled from that same document. */
export const OPENRPC_PROVIDERS: Provider[] = [
  {
    provide: OPENRPC_DOCUMENT,
    inject: [APP_CONFIG],
    useFactory: (config: AppConfig): OpenRpcDocument =>
      buildOpenRpcDocument({ maxPayloadBytes: config.maxPayloadBytes, maxTakeMessages: config.maxTakeMessages }),
  },
  {
    provide: RpcParamsValidator,
    inject: [OPENRPC_DOCUMENT],
    useFactory: (document: OpenRpcDocument) => new RpcParamsValidator(document),
  },
];
