import { readFileSync } from 'node:fs';
import t from 'tap';
import { createCampaign, post, startPacer, status } from './helpers/server.js';

// One shard with room for 32 operations in flight: a burst of concurrent requests must overflow it.
const pacer = await startPacer({ env: { PACER_SHARDS: '1', PACER_SHARD_INFLIGHT_MAX: '32' } });
t.teardown(() => pacer.stop());

const rssMb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pacer.child.pid}/status`, 'utf8'))![1]) / 1024;

t.test('past its in-flight bound a shard is answered 503 with Retry-After at once, and memory stays bounded', async (t) => {
  await createCampaign(pacer, { id: 'flood', dailyBudgetMicros: 1_000_000_000_000, strategy: 'ASAP', breaker: { enabled: false } });
  const before = await status(pacer, 'flood');
  const rssBefore = rssMb();
  let ok = 0;
  let overloaded = 0;
  let retryAfterSeen = true;
  let other = 0;
  for (let round = 0; round < 20; round++) {
    const burst = Array.from({ length: 50 }, (_, i) =>
      post(pacer.url, '/v1/decide/batch', {
        requests: Array.from({ length: 20 }, (_, j) => ({ campaignId: 'flood', bidMicros: 1, requestId: `r${round}-${i}-${j}` })),
      }),
    );
    for (const r of await Promise.all(burst)) {
      if (r.status === 200 && r.body.decisions.length === 20) ok++;
      else if (r.status === 503 && r.body.error.code === 'OVERLOADED') {
        overloaded++;
        if (r.headers.get('retry-after') !== '1') retryAfterSeen = false;
      } else other++;
    }
  }
  t.ok(overloaded > 0, `${overloaded} of 1,000 batches were refused with 503 OVERLOADED`);
  t.ok(ok > 0, `${ok} batches were served`);
  t.equal(other, 0, 'every answer is a full 200 or a 503 OVERLOADED');
  t.ok(retryAfterSeen, 'every 503 carries Retry-After');
  const after = await status(pacer, 'flood');
  t.equal(after.counters.decisions - before.counters.decisions, ok * 20, 'refused batches changed nothing');
  const grown = rssMb() - rssBefore;
  t.ok(grown < 150, `memory grew ${grown.toFixed(0)} MB over 20,000 requests`);
  const calm = await post(pacer.url, '/v1/decide', { campaignId: 'flood' });
  t.equal(calm.status, 200, 'after the flood the shard answers again');
});
