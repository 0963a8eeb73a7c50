import type fc from 'fast-check';
import {
  type AdminCase, adminCase, type BodyCase, type FrameCase, fuzzCampaigns, hotBodyCase, pipelined, type RawCase,
  rawBadFramingCase, rawFramedCase, rawTruncatedCase, rawUncommonTargetCase, streamFrameCase,
} from './generators.js';
import { type Family, sendAdmin, sendBody, sendRaw, StreamClient, type Target } from './harness.js';

/**
 * The fuzz families, each a generator with the way its cases are sent. `npm test` runs a fixed
 * number of cases of each from fixed seeds (test/fuzz/*.test.ts); `npm run fuzz` runs them all
 * for as long as it is told (bench/fuzz.ts).
 */
export function families(target: Target): { all: { [name: string]: Family<any> }; close(): void } {
  const stream = new StreamClient(target);
  const body = (name: string, arbitrary: fc.Arbitrary<BodyCase>): Family<BodyCase> => ({
    name, arbitrary, campaign: fuzzCampaigns.hot, send: sendBody, describe: (c) => `POST ${c.path}, ${c.mutation}`,
  });
  const raw = (name: string, arbitrary: fc.Arbitrary<RawCase>): Family<RawCase> => ({
    name, arbitrary, campaign: fuzzCampaigns.hot, send: sendRaw, describe: (c) => c.description,
  });
  const all = {
    'hot-path bodies': body('hot-path bodies', hotBodyCase),
    'raw requests': raw('raw requests', rawFramedCase),
    'bad framing': raw('bad framing', rawBadFramingCase),
    'truncated requests': raw('truncated requests', rawTruncatedCase),
    'pipelined requests': raw('pipelined requests', pipelined),
    'rare valid requests': raw('rare valid requests', rawUncommonTargetCase),
    'stream frames': {
      name: 'stream frames', arbitrary: streamFrameCase, campaign: fuzzCampaigns.stream,
      send: (_t: Target, c: FrameCase) => stream.send(c), describe: (c: FrameCase) => c.description,
    },
    'admin requests': {
      name: 'admin requests', arbitrary: adminCase, campaign: fuzzCampaigns.admin,
      send: sendAdmin, describe: (c: AdminCase) => `${c.method} ${c.path.slice(0, 80)}, ${c.description}`,
    },
  };
  return { all, close: () => stream.close() };
}
