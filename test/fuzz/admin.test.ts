import t from 'tap';
import { fuzzFile } from './run.js';

// The admin API: mutated campaign bodies with the admin token, campaign routes with odd IDs, bad tokens.
await fuzzFile(t, [{
  family: 'admin requests', seed: 7201, cases: 300,
  todo: 'issue 7 part 6 (admin branch, not merged here: it conflicts with router and money): a campaign body nested ~10,000 levels deep answers 500 "Maximum call stack size exceeded"',
}]);
