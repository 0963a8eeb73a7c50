import t from 'tap';
import { fuzzFile } from './run.js';

// The admin API: mutated campaign bodies with the admin token, campaign routes with odd IDs, bad tokens.
await fuzzFile(t, [{ family: 'admin requests', seed: 7201, cases: 300 }]);
