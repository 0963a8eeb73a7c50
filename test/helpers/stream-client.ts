import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

export interface StreamClient {
  ws: WebSocket;
  /** Sends one msgpack frame of operations and resolves with the next answer frame (answers come in order). */
  request(ops: unknown): Promise<any[]>;
}

/** A WebSocket client of /v1/stream on the given hot-path port. */
export async function streamClient(port: number): Promise<StreamClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waiting: ((frame: any[]) => void)[] = [];
  ws.on('message', (data: Buffer) => waiting.shift()?.(unpackr.unpack(data) as any[]));
  return {
    ws,
    request(ops: unknown) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        ws.send(packr.pack(ops));
      });
    },
  };
}
