import { connect } from 'node:net';
import { auth, type Reply } from './server.js';

/** Admin requests over real HTTP with any method and headers; bodies that are strings go as they are. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const res = await fetch(base + path, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text), headers: res.headers };
}

export const mergePatch = { 'content-type': 'application/merge-patch+json' };

/**
 * Sends one raw HTTP/1.1 request with keep-alive asked for, and resolves with the answer's text and
 * whether the server closed the connection after it.
 */
export function rawRequest(port: number, request: string | Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 2_000);
    socket.on('data', (d) => (text += d.toString('latin1')));
    // The server may close while the request is still being written: the answer is what it sent.
    socket.on('error', () => resolve({ text, closed: true }));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(request);
  });
}

export function campaign(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, dailyBudgetMicros: 1_000_000, strategy: 'ASAP', breaker: { enabled: false }, ...extra };
}
