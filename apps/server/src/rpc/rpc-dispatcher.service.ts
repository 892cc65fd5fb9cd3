import { Inject, Injectable, Logger } from '@nestjs/common';
import { JSONRPCErrorResponse, JSONRPCID, JSONRPCRequest, JSONRPCResponse, JSONRPCServer } from 'json-rpc-2.0';
import {
  MAX_BATCH_REQUESTS,
  MAX_REQUEST_ID_LENGTH,
  OpenRpcDocument,
  RpcErrorCode,
  RpcMethod,
  RpcNotification,
} from '@didcomm-mpr/protocol';
import { ConnectionRef } from '../config';
import { LiveSessionService, SessionHolder } from '../live-session';
import { MetricsService } from '../metrics';
import { QueueService, stringifyWithRawJson } from '../queue';
import { AccessGrant } from './access-grant';
import { AccessPolicy } from './access.policy';
import { OPENRPC_DOCUMENT } from './openrpc-document.provider';
import { rpcError, toRpcError } from './rpc-error.mapper';
import { RpcParamsValidator } from './rpc-params.validator';

const KNOWN_METHODS = new Set<string>(Object.values(RpcMethod));
const KNOWN_EVENTS = new Set<string>(Object.values(RpcNotification));

/** The socket a frame came on: it holds the live sessions its calls register, and the grant of its token. */
export interface RpcCaller extends SessionHolder {
  readonly grant: AccessGrant;
}

/** The connection a call names, in the tenant of the caller's token: a call can only reach its own tenant's. */
function refOf(caller: RpcCaller, connectionId: string): ConnectionRef {
  return { tenant: caller.grant.tenant, connectionId };
}

/** An error every valid request of a frame is answered with instead of being run. */
export interface Refusal {
  code: number;
  message: string;
}

function isJsonRpcId(value: unknown): value is JSONRPCID {
  return typeof value === 'string' || typeof value === 'number' || value === null;
}

/** The connectionId a request names, for its log lines (only a string: the params may be anything). */
function connectionIdOf(params: unknown): string | undefined {
  const connectionId = (params as { connectionId?: unknown } | undefined)?.connectionId;
  return typeof connectionId === 'string' ? connectionId.slice(0, 512) : undefined;
}

function errorResponse(id: JSONRPCID, code: number, message: string): JSONRPCErrorResponse {
  return { jsonrpc: '2.0', id, error: rpcError(code, message) };
}

/**
 * Turns one text frame into its response text (or nothing, for notifications): parsing, batches and
 * request validation follow JSON-RPC 2.0 to the letter here; `json-rpc-2.0` dispatches valid requests to
 * the methods, which call the module facades. Between the two, each request passes the access step (the token's
 * rate, then its role) before its params are read.
 */
@Injectable()
export class RpcDispatcher {
  private readonly logger = new Logger(RpcDispatcher.name);
  private readonly server = new JSONRPCServer<RpcCaller>({
    errorListener: () => undefined, // errors are mapped and, when unexpected, logged in mapError below
  });

  constructor(
    private readonly queue: QueueService,
    private readonly sessions: LiveSessionService,
    private readonly metrics: MetricsService,
    private readonly params: RpcParamsValidator,
    @Inject(OPENRPC_DOCUMENT) private readonly document: OpenRpcDocument,
    private readonly access: AccessPolicy,
  ) {
    this.server.mapErrorToJSONRPCErrorResponse = (id, error) => this.mapError(id, error);
    this.server.handleMethodNotFound = async (request) =>
      request.id === undefined
        ? null
        : (errorResponse(request.id, RpcErrorCode.MethodNotFound, `Method not found: ${request.method}`) as never);
    this.server.applyMiddleware(async (next, request, caller) => {
      const method = KNOWN_METHODS.has(request.method) ? request.method : 'unknown';
      const stop = this.metrics.requestDuration.startTimer({ method });
      let response: JSONRPCResponse | null;
      try {
        response = await next(request, caller);
      } catch (error) {
        const mapped = this.mapError(request.id ?? null, error, {
          method: request.method,
          socketId: caller.id,
          connectionId: connectionIdOf(request.params),
        });
        response = request.id === undefined ? null : mapped;
      }
      stop();
      if (response && 'error' in response && response.error) this.metrics.errors.inc({ code: String(response.error.code) });
      return response;
    });
    // The access step: a refusal (thrown) is answered through the mapping above; nothing of the method runs.
    this.server.applyMiddleware(async (next, request, caller) => {
      this.access.check(request.method, caller.grant);
      return next(request, caller);
    });
    this.registerMethods();
  }

  /** Each method validates its params (one step, from the OpenRPC document's schemas) before it calls a service. */
  private registerMethods(): void {
    const s = this.server;
    const p = this.params;
    s.addMethod(RpcMethod.AddMessage, async (raw, caller) => {
      const params = p.parse(RpcMethod.AddMessage, raw);
      return { messageId: await this.queue.addMessage(refOf(caller, params.connectionId), params) };
    });
    s.addMethod(RpcMethod.TakeFromQueue, (raw, caller) => {
      const params = p.parse(RpcMethod.TakeFromQueue, raw);
      return this.queue.takeFromQueue(refOf(caller, params.connectionId), params);
    });
    s.addMethod(RpcMethod.GetAvailableMessageCount, (raw, caller) => {
      const params = p.parse(RpcMethod.GetAvailableMessageCount, raw);
      return this.queue.getAvailableMessageCount(refOf(caller, params.connectionId), params);
    });
    s.addMethod(RpcMethod.GetQueueStats, (raw, caller) => {
      const params = p.parse(RpcMethod.GetQueueStats, raw);
      return this.queue.getQueueStats(refOf(caller, params.connectionId), params);
    });
    s.addMethod(RpcMethod.RemoveMessages, async (raw, caller) => {
      const params = p.parse(RpcMethod.RemoveMessages, raw);
      await this.queue.removeMessages(refOf(caller, params.connectionId), params);
      return true;
    });
    s.addMethod(RpcMethod.RemoveAllMessages, async (raw, caller) => {
      const params = p.parse(RpcMethod.RemoveAllMessages, raw);
      await this.queue.removeAllMessages(refOf(caller, params.connectionId), params);
      return true;
    });
    s.addMethod(RpcMethod.AddLiveSession, (raw, caller) => {
      const params = p.parse(RpcMethod.AddLiveSession, raw);
      return this.sessions.add(refOf(caller, params.connectionId), params.sessionId, params.reclaim ?? false, caller);
    });
    s.addMethod(RpcMethod.GetLiveSession, (raw, caller) =>
      this.sessions.isHeld(refOf(caller, p.parse(RpcMethod.GetLiveSession, raw).connectionId)),
    );
    s.addMethod(RpcMethod.RemoveLiveSession, (raw, caller) => {
      const params = p.parse(RpcMethod.RemoveLiveSession, raw);
      return this.sessions.remove(refOf(caller, params.connectionId), params.sessionId);
    });
    s.addMethod(RpcMethod.Ping, () => 'pong');
    s.addMethod(RpcMethod.Discover, () => this.document);
    // rpc-websockets' subscription handshake. Notifications go to session holders whether or not they
    // subscribed, so this only acknowledges, in that library's words.
    const subscription = (raw: unknown) =>
      Object.fromEntries(p.parseEventNames(raw).map((name) => [name, KNOWN_EVENTS.has(name) ? 'ok' : 'provided event invalid']));
    s.addMethod(RpcMethod.Subscribe, subscription);
    s.addMethod(RpcMethod.Unsubscribe, subscription);
  }

  /** Maps an error thrown by a method; an unexpected one is logged with the request's method, socket and connection. */
  private mapError(
    id: JSONRPCID,
    error: unknown,
    scope?: { method: string; socketId: string; connectionId?: string },
  ): JSONRPCErrorResponse {
    const { error: rpc, unexpected } = toRpcError(error);
    if (unexpected) {
      this.logger.error(
        { message: `Unexpected error in a JSON-RPC method: ${(error as Error)?.message ?? String(error)}`, ...scope },
        (error as Error)?.stack,
      );
    }
    return { jsonrpc: '2.0', id, error: rpc };
  }

  /**
   * Handles one frame; resolves with the response text, or undefined when nothing is to be sent. With a
   * `refusal` (the server is shutting down), valid requests are answered with that error instead of run.
   */
  async handleFrame(text: string, caller: RpcCaller, refusal?: Refusal): Promise<string | undefined> {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.metrics.errors.inc({ code: String(RpcErrorCode.ParseError) });
      return JSON.stringify(errorResponse(null, RpcErrorCode.ParseError, 'Parse error'));
    }
    if (Array.isArray(message)) {
      if (message.length === 0) return JSON.stringify(this.invalid(null, 'Invalid Request: empty batch'));
      if (message.length > MAX_BATCH_REQUESTS) {
        return JSON.stringify(
          this.invalid(null, `Invalid Request: a batch may hold at most ${MAX_BATCH_REQUESTS} requests, this one holds ${message.length}`),
        );
      }
      // The specification lets a batch run in any order; running it concurrently lets the adds of one
      // batch share a commit. The answer is always an array, even for a batch of one.
      const responses = (await Promise.all(message.map((entry) => this.handleOne(entry, caller, refusal)))).filter(
        (response): response is JSONRPCResponse => response !== null,
      );
      return responses.length > 0 ? stringifyWithRawJson(responses) : undefined;
    }
    const response = await this.handleOne(message, caller, refusal);
    return response ? stringifyWithRawJson(response) : undefined;
  }

  private async handleOne(entry: unknown, caller: RpcCaller, refusal: Refusal | undefined): Promise<JSONRPCResponse | null> {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return this.invalid(null, 'Invalid Request: not an object');
    const request = entry as Record<string, unknown>;
    const hasId = 'id' in request && request.id !== undefined;
    if (hasId && !isJsonRpcId(request.id)) return this.invalid(null, 'Invalid Request: id must be a string, a number or null');
    // Echoed in the response, so bounded: a result sized to the frame limit must still fit with its id.
    if (typeof request.id === 'string' && request.id.length > MAX_REQUEST_ID_LENGTH) {
      return this.invalid(null, `Invalid Request: id must be at most ${MAX_REQUEST_ID_LENGTH} characters`);
    }
    const id = hasId ? (request.id as JSONRPCID) : null;
    if (request.jsonrpc !== '2.0') return this.invalid(id, 'Invalid Request: jsonrpc must be "2.0"');
    if (typeof request.method !== 'string') return this.invalid(id, 'Invalid Request: method must be a string');
    // rpc-websockets' `call(method)` (the transport of existing mediators) sends `"params": null` when there
    // are no params: treat it as absent, as that library's own server does.
    if (request.params === null) delete request.params;
    if (request.params !== undefined && typeof request.params !== 'object') {
      return this.invalid(id, 'Invalid Request: params must be an object or an array');
    }
    if ('result' in request || 'error' in request) return this.invalid(id, 'Invalid Request: a response is not a request');
    if (refusal) {
      if (!hasId) return null;
      this.metrics.errors.inc({ code: String(refusal.code) });
      return errorResponse(id, refusal.code, refusal.message);
    }
    return this.server.receive(request as unknown as JSONRPCRequest, caller);
  }

  private invalid(id: JSONRPCID, message: string): JSONRPCErrorResponse {
    this.metrics.errors.inc({ code: String(RpcErrorCode.InvalidRequest) });
    return errorResponse(id, RpcErrorCode.InvalidRequest, message);
  }
}
