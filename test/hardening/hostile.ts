import { connect } from 'node:net';
import { get, type Pacer, status } from '../helpers/server.js';

/**
 * Shared by the hardening tests: raw bytes over a real TCP connection (where HTTP framing matters),
 * and the checks made after every hostile input: the process still answers /healthz, and the
 * campaign's money and counters did not move.
 */
export interface RawReply {
  /** Everything the server sent, as latin1 text. */
  text: string;
  /** The server closed the connection (rather than the test giving up waiting). */
  closed: boolean;
}

/** Sends `data` on a fresh connection and collects the answer until the server closes or `waitMs` pass. */
export function rawHttp(port: number, data: string | Buffer, waitMs = 1_000): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(data);
  });
}

/** The HTTP answers in `text`, parsed just enough: status, headers, body (by Content-Length). */
export function answers(text: string): { status: number; headers: Record<string, string>; body: string }[] {
  const out: { status: number; headers: Record<string, string>; body: string }[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

export function request(method: string, path: string, body = '', extraHeaders = ''): string {
  return `${method} ${path} HTTP/1.1\r\nHost: pacer\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}

/** The parts of a campaign's status that any accepted operation would move. */
export async function money(p: Pacer, id: string): Promise<unknown> {
  const s = await status(p, id);
  return { settledMicros: s.settledMicros, reservedMicros: s.reservedMicros, reservations: s.reservations, counters: s.counters };
}

export async function healthy(p: Pacer): Promise<boolean> {
  const h = await get(p.url, '/healthz');
  return h.status === 200 && p.child.exitCode === null;
}
