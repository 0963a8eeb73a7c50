import t from 'tap';
import { fuzzFile } from './run.js';

// /v1/stream: MessagePack frames with every extension type, deep nesting, huge numbers, truncation.
await fuzzFile(t, [{ family: 'stream frames', seed: 7101, cases: 300 }]);
