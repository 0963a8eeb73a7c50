import t from 'tap';
import { fuzzFile } from './run.js';

/**
 * Hot-path HTTP: mutated JSON bodies, then raw requests over a socket (methods, paths, headers,
 * framing). What uWS cannot answer is judged by what docs/api.md ("HTTP framing") documents: a
 * silent close where it says so, and then nothing may have run.
 */
await fuzzFile(t, [
  { family: 'hot-path bodies', seed: 7001, cases: 250 },
  { family: 'raw requests', seed: 7002, cases: 60 },
  { family: 'bad framing', seed: 7003, cases: 15 },
  { family: 'truncated requests', seed: 7004, cases: 30 },
  { family: 'pipelined requests', seed: 7005, cases: 20 },
  { family: 'rare valid requests', seed: 7006, cases: 8 },
]);
