import { RETRYABLE_ERROR_CODES, RpcErrorCode } from '@didcomm-mpr/protocol';
import { FuzzFinding } from '../support/fuzz-target';

/** The most requests a batch may hold (the server's documented limit): a longer one gets one error. */
const MAX_BATCH_REQUESTS = 1000;
const MAX_ID_CHARACTERS = 1024;
const KNOWN_CODES = new Set<number>(Object.values(RpcErrorCode));

type Obj = Record<string, unknown>;
const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);
const isId = (value: unknown) => typeof value === 'string' || typeof value === 'number' || value === null;
const show = (value: unknown) => JSON.stringify(value)?.slice(0, 300);

/** A request the server must not answer: well-formed, without an id. */
function isNotification(entry: unknown): boolean {
  if (!isObject(entry) || 'id' in entry) return false;
  if (entry.jsonrpc !== '2.0' || typeof entry.method !== 'string') return false;
  if ('result' in entry || 'error' in entry) return false;
  return entry.params === undefined || entry.params === null || typeof entry.params === 'object';
}

/** The id the answer to `entry` must carry: its own when it had a usable one, null otherwise. */
function expectedId(entry: unknown): unknown {
  if (!isObject(entry) || !('id' in entry) || !isId(entry.id)) return null;
  if (typeof entry.id === 'string' && entry.id.length > MAX_ID_CHARACTERS) return null;
  return entry.id;
}

/** One response object: JSON-RPC 2.0's shape, and the server's error contract (known code, data.retryable). */
function checkResponse(response: unknown, where: string): Obj {
  if (!isObject(response)) throw new FuzzFinding(`${where}: a response must be an object, got ${show(response)}`);
  for (const key of Object.keys(response)) {
    if (!['jsonrpc', 'id', 'result', 'error'].includes(key))
      throw new FuzzFinding(`${where}: unexpected member "${key}" in ${show(response)}`);
  }
  if (response.jsonrpc !== '2.0') throw new FuzzFinding(`${where}: jsonrpc must be "2.0" in ${show(response)}`);
  if (!('id' in response) || !isId(response.id))
    throw new FuzzFinding(`${where}: id must be a string, a number or null in ${show(response)}`);
  if ('result' in response === 'error' in response)
    throw new FuzzFinding(`${where}: exactly one of result and error, got ${show(response)}`);
  if ('error' in response) {
    const error = response.error;
    if (!isObject(error) || !Number.isInteger(error.code) || typeof error.message !== 'string' || error.message === '') {
      throw new FuzzFinding(`${where}: an error needs an integer code and a message, got ${show(error)}`);
    }
    const code = error.code as number;
    if (!KNOWN_CODES.has(code)) throw new FuzzFinding(`${where}: undocumented error code ${code}`);
    // -32603 is the server's own "this is a bug": input must never cause it.
    if (code === RpcErrorCode.InternalError) throw new FuzzFinding(`${where}: internal error for client input: ${show(error)}`);
    if (!isObject(error.data) || typeof error.data.retryable !== 'boolean')
      throw new FuzzFinding(`${where}: error without data.retryable: ${show(error)}`);
    if (error.data.retryable !== RETRYABLE_ERROR_CODES.has(code))
      throw new FuzzFinding(`${where}: data.retryable disagrees with code ${code}`);
  }
  return response;
}

function expectSingleError(answer: unknown, code: number, where: string): void {
  const response = checkResponse(answer, where);
  if (response.id !== null || !isObject(response.error) || response.error.code !== code) {
    throw new FuzzFinding(`${where}: expected error ${code} with id null, got ${show(response)}`);
  }
}

/**
 * The JSON-RPC 2.0 contract of one frame and its answer: a parse error for text that is not JSON; no answer exactly
 * when every request of the frame is a notification; one response (with the request's id) for a request, an array
 * with one response per non-notification entry for a batch; the shape of each response; documented error codes only,
 * never -32603, with `data.retryable`. Returns the parsed answer.
 */
export function checkJsonRpcAnswer(frame: string, answer: string | undefined): unknown {
  let request: unknown;
  try {
    request = JSON.parse(frame);
  } catch {
    if (answer === undefined) throw new FuzzFinding('no answer to a frame that is not JSON');
    expectSingleError(JSON.parse(answer), RpcErrorCode.ParseError, 'parse error');
    return JSON.parse(answer);
  }
  const entries = Array.isArray(request) ? request : [request];
  const batch = Array.isArray(request);
  if (answer === undefined) {
    if (batch && entries.length === 0) throw new FuzzFinding('no answer to an empty batch');
    const answered = entries.find((entry) => !isNotification(entry));
    if (answered !== undefined) throw new FuzzFinding(`no answer, but ${show(answered)} is not a notification`);
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer);
  } catch {
    throw new FuzzFinding(`the answer is not JSON: ${answer.slice(0, 300)}`);
  }
  if (batch && (entries.length === 0 || entries.length > MAX_BATCH_REQUESTS)) {
    expectSingleError(parsed, RpcErrorCode.InvalidRequest, 'empty or oversized batch');
    return parsed;
  }
  if (!batch) {
    if (isNotification(request)) throw new FuzzFinding(`a notification was answered: ${answer.slice(0, 300)}`);
    const response = checkResponse(parsed, 'response');
    if (response.id !== expectedId(request))
      throw new FuzzFinding(`response id ${show(response.id)} for request id ${show(expectedId(request))}`);
    return parsed;
  }
  if (!Array.isArray(parsed)) throw new FuzzFinding(`a batch must be answered with an array, got ${answer.slice(0, 300)}`);
  const wanted = entries.filter((entry) => !isNotification(entry));
  if (parsed.length !== wanted.length) throw new FuzzFinding(`${wanted.length} batch entries need an answer, got ${parsed.length}`);
  const ids = new Map<unknown, number>();
  for (const entry of wanted) ids.set(expectedId(entry), (ids.get(expectedId(entry)) ?? 0) + 1);
  parsed.forEach((response, index) => {
    const checked = checkResponse(response, `batch response ${index}`);
    const left = ids.get(checked.id) ?? 0;
    if (left === 0) throw new FuzzFinding(`batch response with id ${show(checked.id)} that no entry asked for`);
    ids.set(checked.id, left - 1);
  });
  return parsed;
}
