import type { HttpResponse } from 'uWebSockets.js';
import { limits } from '../../shards/limits.js';
import { ApiError, statusLine } from './errors.js';

/**
 * Writing answers the way uWS wants them: status first, then headers, then the body; a deferred
 * answer is corked (one syscall) and skipped when the client went away (`res.aborted`, set by the
 * onAborted handler every deferred route attaches).
 */
export interface Res extends HttpResponse {
  aborted?: boolean;
}

// The header every JSON answer carries, as bytes made once: uWS copies a JavaScript string it is
// handed (a UTF-8 conversion per call), and takes the bytes of a Uint8Array as they are.
const contentTypeKey = Buffer.from('content-type', 'latin1');
const contentTypeJson = Buffer.from('application/json', 'latin1');

// sendJson's arguments for its cork callback: one function made once instead of a closure per
// answer (a hot-path answer is written outside uWS's handler, so it must be corked).
let corkRes: Res;
let corkStatus = 200;
let corkBody: string | Uint8Array = '';
let corkClose = false;
function writeCorked(): void {
  if (corkStatus !== 200) corkRes.writeStatus(statusLine(corkStatus));
  corkRes.writeHeader(contentTypeKey, contentTypeJson);
  corkRes.end(corkBody, corkClose);
}

/**
 * Writes a JSON answer (corked: one write). `body` may be the JSON's bytes (ASCII), which uWS takes
 * without converting them; nothing keeps them after this call returns.
 */
export function sendJson(res: Res, status: number, body: string | Uint8Array, closeConnection = false): void {
  if (res.aborted) return;
  corkRes = res;
  corkStatus = status;
  corkBody = body;
  corkClose = closeConnection;
  try {
    res.cork(writeCorked);
  } finally {
    // Do not keep the last response (and its body) alive until the next answer.
    corkRes = undefined as unknown as Res;
    corkBody = '';
  }
}

export function sendError(res: Res, err: ApiError, closeConnection = false): void {
  if (res.aborted) return;
  res.cork(() => {
    res.writeStatus(statusLine(err.status)).writeHeader('content-type', 'application/json');
    if (err.status === 503) res.writeHeader('retry-after', String(limits.retryAfterSeconds));
    res.end(JSON.stringify(err), closeConnection);
  });
}

/**
 * Reads a JSON body of at most `maxBytes` and hands the parsed value to `onBody`, or answers 400
 * (malformed JSON) or 413 (too large; the connection is closed rather than read to the end).
 * Attaches the abort handler: after this call the response may be answered later.
 */
export function readJson(
  res: Res,
  contentLength: string,
  maxBytes: number,
  onBody: (value: unknown) => void,
  onError?: (err: ApiError) => void,
  scan?: BodyScan,
): void {
  res.onAborted(() => {
    res.aborted = true;
  });
  readJsonBody(res, contentLength, maxBytes, onBody, onError, scan);
}

/**
 * A fast reader for one route's common bodies (src/router/json-scan.ts): the parsed value, or
 * undefined to take the general path (UTF-8 decoding and JSON.parse). It must return exactly what
 * JSON.parse would for every body it accepts.
 */
export type BodyScan = (bytes: Buffer) => unknown;

/** readJson for a response whose abort handler is already attached. */
export function readJsonBody(
  res: Res,
  contentLength: string,
  maxBytes: number,
  onBody: (value: unknown) => void,
  onError: (err: ApiError) => void = (err) => sendError(res, err),
  scan?: BodyScan,
): void {
  if (contentLength !== '' && Number(contentLength) > maxBytes) {
    onError(new ApiError('BODY_TOO_LARGE', `body is ${contentLength} bytes; the limit is ${maxBytes}`));
    return;
  }
  let parts: Buffer[] | null = null;
  let size = 0;
  res.onData((chunk, isLast) => {
    if (res.aborted || size < 0) return;
    size += chunk.byteLength;
    if (size > maxBytes) {
      size = -1;
      onError(new ApiError('BODY_TOO_LARGE', `body exceeds the limit of ${maxBytes} bytes`));
      return;
    }
    let bytes: Buffer;
    if (isLast && parts === null) {
      // The common case, a body in one chunk: read straight from uWS's buffer, no copy (it is
      // valid only during this callback, and nothing below keeps it).
      bytes = Buffer.from(chunk);
    } else {
      (parts ??= []).push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      bytes = Buffer.concat(parts);
    }
    let value = scan === undefined ? undefined : scan(bytes);
    if (value === undefined) {
      try {
        value = JSON.parse(bytes.toString('utf8'));
      } catch {
        onError(new ApiError('INVALID_JSON', 'body is not valid JSON'));
        return;
      }
    }
    onBody(value);
  });
}
