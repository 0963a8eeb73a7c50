/**
 * API error codes. Every 4xx and 5xx answer is `{"error":{"code","message"}}` with one of these
 * codes, so clients can branch on the code and show the message.
 */
export const ErrorStatus = {
  INVALID_JSON: 400,
  INVALID_BODY: 400,
  MISSING_FIELD: 400,
  UNKNOWN_FIELD: 400,
  INVALID_FIELD: 400,
  INVALID_CAMPAIGN_ID: 400,
  INVALID_REQUEST_ID: 400,
  INVALID_EVENT_ID: 400,
  INVALID_AMOUNT: 400,
  BATCH_TOO_LARGE: 400,
  EMPTY_BATCH: 400,
  RANGE_TOO_LARGE: 400,
  /** A backtest asked for a strategy that does not exist. */
  UNKNOWN_STRATEGY: 400,
  /** Stream: a MessagePack extension type (BigInt, records, structured clone, timestamps, …). */
  UNSUPPORTED_TYPE: 400,
  /** Stream: a frame nested deeper than limits.wsFrameDepthMax. */
  TOO_DEEP: 400,
  /** HTTP framing: conflicting Content-Length headers, or Content-Length with Transfer-Encoding. */
  INVALID_FRAMING: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  UNKNOWN_CAMPAIGN: 404,
  /** A campaign without a fitted traffic profile (its history holds no hour with enough minutes). */
  NO_PROFILE: 404,
  /** A backtest's range holds no recorded decision of the campaign. */
  NO_HISTORY: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  TOO_MANY_CAMPAIGNS: 409,
  /** If-None-Match: * on a create, and the campaign exists. */
  CAMPAIGN_EXISTS: 409,
  /** An edit or budget operation on an archived campaign: restore it first. */
  CAMPAIGN_ARCHIVED: 409,
  /** A budget operation would put the budget below today's settled + reserved ({"force": true} overrides). */
  BUDGET_BELOW_COMMITTED: 409,
  /** If-Match named another version: nothing changed; the error carries currentVersion. */
  VERSION_MISMATCH: 412,
  /** PATCH without Content-Type: application/merge-patch+json. */
  UNSUPPORTED_MEDIA_TYPE: 415,
  BODY_TOO_LARGE: 413,
  OVERLOADED: 503,
  STORE_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  NOT_READY: 503,
  /** Stream: limits.streamConnectionsMax (PACER_STREAM_CONNECTIONS_MAX) connections are open. */
  TOO_MANY_CONNECTIONS: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ErrorStatus;

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra members of the error object (numbers and short strings), such as currentVersion. */
    readonly details?: Record<string, string | number | null>,
  ) {
    super(message);
    this.status = ErrorStatus[code];
  }

  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  412: '412 Precondition Failed',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export function statusLine(status: number): string {
  return statusLines[status] ?? `${status} Unknown`;
}
