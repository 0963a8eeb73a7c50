import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * The load generator, always run in its own process so it does not share an event loop with what it
 * measures. Sends POST /v1/decide with bodies that cycle through `campaigns` campaign IDs
 * (bench-0 … bench-N) with a bid and a unique requestId, and prints one JSON line:
 * {tool, rps, p50Ms, p99Ms, non2xx, errors, requests}.
 */
const { values } = parseArgs({
  options: {
    tool: { type: 'string', default: 'autocannon' },
    url: { type: 'string' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    rate: { type: 'string', default: '0' },
    campaigns: { type: 'string', default: '1000' },
    path: { type: 'string', default: '/v1/decide' },
  },
});
const url = values.url!;
const duration = Number(values.duration);
const connections = Number(values.connections);
const rate = Number(values.rate);
const campaigns = Number(values.campaigns);

/** What one load run measured; bench/http.ts reads it from this process's last line. */
export interface LoadResult {
  tool: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  requests: number;
}

function runWrk(): LoadResult {
  const dir = mkdtempSync(join(tmpdir(), 'pacer-wrk-'));
  const script = join(dir, 'decide.lua');
  writeFileSync(
    script,
    `local counter = 0
local nonce = math.random(1, 1000000000)
request = function()
  counter = counter + 1
  local body = string.format('{"campaignId":"bench-%d","bidMicros":1500,"requestId":"w%d-%d"}', counter % ${campaigns}, nonce, counter)
  return wrk.format("POST", "${values.path}", {["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  if status ~= 200 then non2xx = (non2xx or 0) + 1 end
end
`,
  );
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${duration}s`, '--latency', '-s', script, url + values.path], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  const out = r.stdout;
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (re: RegExp): number => {
    const m = re.exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    tool: 'wrk',
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99Ms: ms(/99%\s+([\d.]+)(us|ms|s)/),
    non2xx: Number.isNaN(non2xx) ? 0 : non2xx,
    errors: errors ? errors.slice(1).reduce((s, x) => s + Number(x), 0) : 0,
    requests: num(/(\d+) requests in/),
  };
}

/** Exact percentile of a sorted sample. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runAutocannon(): Promise<LoadResult> {
  let counter = 0;
  const nonce = Math.floor(Math.random() * 1e9);
  // autocannon's own histogram has 1 ms resolution; record each response time (float ms) instead.
  let times = new Float64Array(1 << 20);
  let n = 0;
  const options: autocannon.Options = {
    url,
    connections,
    duration,
    ...(rate > 0 ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        path: values.path,
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          counter++;
          req.body = `{"campaignId":"bench-${counter % campaigns}","bidMicros":1500,"requestId":"a${nonce}-${counter}"}`;
          return req;
        },
      },
    ],
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      if (n === times.length) {
        const next = new Float64Array(times.length * 2);
        next.set(times);
        times = next;
      }
      times[n++] = responseTime;
    });
  });
  const sorted = times.subarray(0, n).sort();
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    tool: rate > 0 ? `autocannon -R ${rate}` : 'autocannon',
    rps: result.requests.average,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    requests: result.requests.total,
  };
}

const out = values.tool === 'wrk' ? runWrk() : await runAutocannon();
process.stdout.write(JSON.stringify(out) + '\n');
