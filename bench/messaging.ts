import { Packr } from 'msgpackr';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { OpReader, OpWriter, ResultReader, ResultWriter } from '../shards/wire.js';
import { root } from './lib/process.js';
import { writeTable } from './table.js';

/**
 * npm run bench:messaging [-- --ops N]
 *
 * The cost of moving decide operations from the router thread to a shard thread and their results
 * back, per encoding, at several batch sizes: a real worker thread decodes every op and encodes a
 * result for each, as the shard does (without deciding). Four encodings:
 *   binary+transfer  the project's layout (shards/wire.ts), ArrayBuffer transferred;
 *   binary+copy      the same bytes, cloned instead of transferred;
 *   msgpackr         an array of op arrays packed with msgpackr (copied out of its pool);
 *   clone            an array of plain objects through structured clone.
 * For each it reports the router thread's busy time per op (event-loop utilisation: the router is the
 * thread that saturates first) and the wall time per op of the round trip.
 * Prints one JSON object as its last line and saves it in bench/results/.
 */
type Mode = 'binary+transfer' | 'binary+copy' | 'msgpackr' | 'clone';
const modes: Mode[] = ['binary+transfer', 'binary+copy', 'msgpackr', 'clone'];

interface Op {
  slot: number;
  campaignId: string;
  bidMicros: number;
  requestId: string;
}

if (!isMainThread) {
  const mode = workerData as Mode;
  const reader = new OpReader();
  const writer = new ResultWriter();
  const packr = new Packr({ useRecords: false });
  parentPort!.on('message', (msg: unknown) => {
    switch (mode) {
      case 'binary+transfer':
      case 'binary+copy': {
        const r = reader.reset(msg as ArrayBuffer);
        while (r.next()) writer.decide(r.slot, r.campaignId.length & 7, 1, 0.5, 1);
        const out = writer.take();
        if (mode === 'binary+transfer') parentPort!.postMessage(out, [out]);
        else parentPort!.postMessage(out);
        break;
      }
      case 'msgpackr': {
        const ops = packr.unpack(new Uint8Array(msg as ArrayBuffer)) as [number, string, number, string][];
        const results = ops.map((o) => [o[0], o[1].length & 7, 1, 0.5, 1]);
        const packed = packr.pack(results);
        parentPort!.postMessage(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength));
        break;
      }
      case 'clone': {
        const ops = msg as Op[];
        parentPort!.postMessage(ops.map((o) => ({ slot: o.slot, reason: o.campaignId.length & 7, flags: 1, throttle: 0.5, pacingIndex: 1 })));
        break;
      }
    }
  });
} else {
  const { values } = parseArgs({ options: { ops: { type: 'string', default: '400000' } } });
  const totalOps = Number(values.ops);
  const batchSizes = [1, 8, 64, 512];
  const packr = new Packr({ useRecords: false });
  const opsOf = (n: number, base: number): Op[] =>
    Array.from({ length: n }, (_, i) => ({
      slot: base + i,
      campaignId: `campaign-${(base + i) % 1000}`,
      bidMicros: 1500,
      requestId: `auction-${base + i}-7f3a9c`,
    }));

  async function run(mode: Mode, batch: number): Promise<{ routerUs: number; wallUs: number }> {
    const worker = new Worker(new URL(import.meta.url), { workerData: mode });
    await new Promise((r) => worker.once('online', r));
    const writer = new OpWriter();
    const reader = new ResultReader();
    const batches = Math.max(1, Math.floor(totalOps / batch));
    // The router has the strings already (from JSON.parse): build the ops before the clock starts.
    const prepared = Array.from({ length: batches }, (_, k) => opsOf(batch, k * batch));
    const send = (k: number): void => {
      const ops = prepared[k]!;
      switch (mode) {
        case 'binary+transfer':
        case 'binary+copy': {
          for (const o of ops) writer.decide(o.slot, o.campaignId, o.bidMicros, o.requestId);
          const buf = writer.take();
          if (mode === 'binary+transfer') worker.postMessage(buf, [buf]);
          else worker.postMessage(buf);
          break;
        }
        case 'msgpackr': {
          const packed = packr.pack(ops.map((o) => [o.slot, o.campaignId, o.bidMicros, o.requestId]));
          worker.postMessage(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength));
          break;
        }
        case 'clone':
          worker.postMessage(ops);
          break;
      }
    };
    let checksum = 0;
    const elu0 = performance.eventLoopUtilization();
    const started = process.hrtime.bigint();
    // Keep 4 batches in flight, as the router does across event-loop turns.
    await new Promise<void>((resolve) => {
      let sent = 0;
      let done = 0;
      worker.on('message', (msg: unknown) => {
        if (mode === 'clone') checksum += (msg as { slot: number }[]).length;
        else if (mode === 'msgpackr') checksum += (packr.unpack(new Uint8Array(msg as ArrayBuffer)) as unknown[]).length;
        else {
          const r = reader.reset(msg as ArrayBuffer);
          while (r.next()) checksum++;
        }
        if (++done === batches) resolve();
        else if (sent < batches) send(sent++);
      });
      for (let i = 0; i < Math.min(4, batches); i++) send(sent++);
    });
    const ns = Number(process.hrtime.bigint() - started);
    const elu = performance.eventLoopUtilization(elu0);
    await worker.terminate();
    const ops = batches * batch;
    if (checksum !== ops) throw new Error(`lost results: ${checksum} of ${ops}`);
    return { routerUs: (elu.active * 1000) / ops, wallUs: ns / 1000 / ops };
  }

  const table: Record<string, Record<string, number>> = {};
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  for (const mode of modes) {
    table[mode] = {};
    for (const b of batchSizes) {
      await run(mode, b); // warm-up
      const { routerUs, wallUs } = await run(mode, b);
      table[mode]![`routerUsBatch${b}`] = r3(routerUs);
      table[mode]![`wallUsBatch${b}`] = r3(wallUs);
      process.stderr.write(`${mode.padEnd(16)} batch ${String(b).padStart(3)}: router ${routerUs.toFixed(2)} µs/op, wall ${wallUs.toFixed(2)} µs/op\n`);
    }
  }
  const result = { unit: 'µs per op', ops: totalOps, ...table, node: process.version, date: new Date().toISOString() };
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results', `messaging-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
  writeTable();
  process.stdout.write(JSON.stringify(result) + '\n');
}
