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

export function sendJson(res: Res, status: number, body: string, closeConnection = false): void {
  if (res.aborted) return;
  res.cork(() => {
    if (status !== 200) res.writeStatus(statusLine(status));
    res.writeHeader('content-type', 'application/json');
    res.end(body, closeConnection);
  });
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
): void {
  res.onAborted(() => {
    res.aborted = true;
  });
  readJsonBody(res, contentLength, maxBytes, onBody, onError);
}

/** readJson for a response whose abort handler is already attached. */
export function readJsonBody(
  res: Res,
  contentLength: string,
  maxBytes: number,
  onBody: (value: unknown) => void,
  onError: (err: ApiError) => void = (err) => sendError(res, err),
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
    let text: string;
    if (isLast && parts === null) {
      // The common case, a body in one chunk: decode straight from uWS's buffer, no copy.
      text = Buffer.from(chunk).toString('utf8');
    } else {
      (parts ??= []).push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      text = Buffer.concat(parts).toString('utf8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      onError(new ApiError('INVALID_JSON', 'body is not valid JSON'));
      return;
    }
    onBody(value);
  });
}
