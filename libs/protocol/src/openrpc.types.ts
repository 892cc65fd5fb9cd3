import type { JsonSchema } from './schema-keywords';

/** The parts of an OpenRPC 1.3 document (https://spec.open-rpc.org) that the server's document uses. */

/** A param, a result or a notification's param: a name and the JSON Schema of its value. */
export interface ContentDescriptor {
  name: string;
  summary?: string;
  description?: string;
  /** Params only: whether the call must carry it (a `null` value counts as absent). */
  required?: boolean;
  schema: JsonSchema;
}

/** An error the server may answer with; `data` is what the error's `data` member holds. */
export interface OpenRpcError {
  code: number;
  message: string;
  data?: { retryable: boolean };
}

export interface OpenRpcReference {
  $ref: string;
}

export interface OpenRpcMethod {
  name: string;
  summary?: string;
  description?: string;
  paramStructure?: 'by-name' | 'by-position' | 'either';
  params: ContentDescriptor[];
  result?: ContentDescriptor;
  errors?: (OpenRpcError | OpenRpcReference)[];
}

export interface OpenRpcDocument {
  openrpc: string;
  info: { title: string; version: string; description?: string; license?: { name: string; url?: string } };
  methods: OpenRpcMethod[];
  components: { errors: Record<string, OpenRpcError> };
  /** Notifications the server sends (OpenRPC has no object for them): each shaped like a method without result. */
  'x-notifications': OpenRpcMethod[];
  /** The extension keywords the schemas use, and what each means. */
  'x-schema-keywords': Record<string, string>;
}
