// `npm run mutate [-- GROUP…]`: StrykerJS (stryker.conf.mjs) over the trainer and the reference ops, one group at a
// time (`trainer`, `ops` for every op, or `op-rmsnorm` …; default all), then the mutation score of each from
// reports/mutation/<group>.json. Not in CI: it takes tens of minutes on two cores. Stryker is not a devDependency
// (adding it rewrites the lockfile): STRYKER_BIN names a stryker executable, else node_modules/.bin/stryker, else
// npx fetches @stryker-mutator/core 8 with typescript beside it (its tsconfig preprocessor imports typescript).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GROUP_NAMES } from '../stryker.conf.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const local = path.join(root, 'node_modules/.bin/stryker');
const [bin, pre] = process.env.STRYKER_BIN
  ? [process.env.STRYKER_BIN, []]
  : fs.existsSync(local)
    ? [local, []]
    : ['npx', ['--yes', '-p', '@stryker-mutator/core@8.7.1', '-p', 'typescript@~5.9.3', 'stryker']];
const asked = process.argv.slice(2);
const groups =
  asked.length === 0 ? GROUP_NAMES : asked.flatMap((a) => (a === 'ops' ? GROUP_NAMES.filter((g) => g.startsWith('op-')) : [a]));
for (const g of groups)
  if (!GROUP_NAMES.includes(g)) {
    console.error(`unknown group ${g} (known: ops, ${GROUP_NAMES.join(', ')})`);
    process.exit(2);
  }

/** Stryker's score: detected (killed, timed out) over valid mutants (also survived, not covered) */
function score(file) {
  const counts = {};
  for (const f of Object.values(JSON.parse(fs.readFileSync(file, 'utf8')).files))
    for (const m of f.mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
  const detected = (counts.Killed ?? 0) + (counts.Timeout ?? 0);
  const valid = detected + (counts.Survived ?? 0) + (counts.NoCoverage ?? 0);
  return { detected, valid, score: valid ? (100 * detected) / valid : NaN, counts };
}

const rows = [];
let total = { detected: 0, valid: 0 };
for (const g of groups) {
  const t0 = Date.now();
  const r = spawnSync(bin, [...pre, 'run', 'stryker.conf.mjs'], { stdio: 'inherit', cwd: root, env: { ...process.env, MUTATE_GROUP: g } });
  if (r.status !== 0) {
    console.error(`stryker failed on ${g} (status ${r.status})`);
    process.exit(1);
  }
  const s = score(path.join(root, 'reports/mutation', `${g}.json`));
  total = { detected: total.detected + s.detected, valid: total.valid + s.valid };
  rows.push(
    `${g.padEnd(18)} ${s.score.toFixed(1).padStart(5)}%  ${s.detected}/${s.valid} detected  ${JSON.stringify(s.counts)}  ${((Date.now() - t0) / 60000).toFixed(1)} min`,
  );
}
console.log(
  [
    '',
    'mutation score (killed + timeout over killed + timeout + survived + no coverage):',
    ...rows,
    `${'all'.padEnd(18)} ${((100 * total.detected) / total.valid).toFixed(1).padStart(5)}%  ${total.detected}/${total.valid}`,
  ].join('\n'),
);
